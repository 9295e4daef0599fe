"""The card's feature-importance step has a budget the spec sets (`export.importance_seconds`,
20 s by default): a big model's CI job spent ~20 s of each run there, with no way to spend less;
0 leaves the plot out (the spec's choice: no note) and the job publishes as before."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.torchless import torch_or_skip
from tests.training.conftest import spec_dict
from training.spec import SpecError, parse_spec


def _run(tmp_path: Path, export: dict[str, object]) -> tuple[str, str]:
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump(spec_dict("logistic", name="budget", export=export)))
    store = str(tmp_path / "store")
    args = ["--store", store, "train", str(spec), "--publish", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    card = Registry(LocalStore(tmp_path / "store")).store.get_bytes(
        "models/budget/versions/1/card/card.md"
    )
    return card.decode(), str(tmp_path / "run")


def test_no_importance_budget_publishes_a_card_without_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch_or_skip()  # it trains
    card, run = _run(tmp_path, {"importance_seconds": 0})
    err = capsys.readouterr().err
    assert "importance" not in err  # the spec's own choice: no note
    assert "Feature importance" not in card and "![Loss curves](loss.png)" in card
    assert not (Path(run) / "card" / "importance.png").exists()


def test_the_default_budget_draws_the_plot(tmp_path: Path) -> None:
    torch_or_skip()
    card, run = _run(tmp_path, {})
    assert "![Feature importance](importance.png)" in card
    assert (Path(run) / "card" / "importance.png").is_file()


def test_a_negative_budget_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"export\.importance_seconds"):
        parse_spec(spec_dict("logistic", export={"importance_seconds": -1}))
    assert parse_spec(spec_dict("logistic", export={"importance_seconds": 2.5})).export == (
        parse_spec(spec_dict("logistic")).export.__class__(importance_seconds=2.5)
    )
