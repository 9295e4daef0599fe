"""A model trained with `aiaas train` on a user's CSV keeps the user's column names, whatever
they are (here f0, f1, f2: the shape of names made up for arrays), in serving, explain and the
model card; `aiaas compare` finds the training target in a file that holds it.

Everything goes through the real CLI: training in process (its main), the rest in a
subprocess, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.explain.background import BACKGROUND_FILE, Background
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import body_of, http_event
from tests.torchless import torch_or_skip
from tests.training.conftest import write_csv
from training.importance import global_importance

REPO = Path(__file__).resolve().parents[2]
COLUMNS = ["f0", "f1", "f2"]


def aiaas(store: Path, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli.main", "--store", str(store), *argv],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        cwd=cwd,
        timeout=300,
        check=False,
    )


@dataclass
class Trained:
    store: Path
    data: Path
    rows: list[list[float | str]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Versions 1 and 2 of `fcols`, trained on cls.csv (columns f0, f1, f2 and outcome)."""
    torch_or_skip()  # it trains
    root = tmp_path_factory.mktemp("user-columns")
    rng = np.random.default_rng(0)
    rows: list[list[float | str]] = []
    for a, b, c in rng.normal(size=(150, 3)).round(3).tolist():
        rows.append([a, b, c, "yes" if a + 2 * b > 0 else "no"])
    data = write_csv(root / "cls.csv", [*COLUMNS, "outcome"], rows)
    for epochs in (2, 40):
        spec = {
            "name": "fcols",
            "task": "classification",
            "dataset": {"path": "cls.csv", "target": "outcome"},
            "recipe": {"name": "logistic"},
            "epochs": epochs,
            "learning_rate": 0.05,
            "seed": 0,
            # the columns' names (served, explained, carded, compared) are the point, not
            # dynamo's export: the documented TorchScript exporter, the same model and inputs
            "export": {"exporter": "torchscript"},
        }
        if epochs == 40:  # version 1 has no description
            spec["description"] = "Says yes or no."
        (root / "job.yaml").write_text(yaml.safe_dump(spec))
        # In process (the CLI's own main, from the folder a user runs it in): two `aiaas
        # train` subprocesses cost 15 s of imports; explain and compare below stay real ones.
        here = Path.cwd()
        os.chdir(root)
        try:
            argv = ["--store", str(root / "store"), "train", "job.yaml", "--publish"]
            assert main([*argv, "--no-progress"]) == 0
        finally:
            os.chdir(here)
    return Trained(root / "store", data, rows)


def test_the_columns_are_the_features_served_by_name(trained: Trained, tmp_path: Path) -> None:
    store = LocalStore(trained.store)
    registry = Registry(store)
    manifest = registry.manifest("fcols", "1")
    assert manifest.features == tuple(COLUMNS)
    service = service_from_env(
        {"AIAAS_MODEL": "fcols"}, ModelPool(registry, ArtifactCache(store, tmp_path / "cache"))
    )
    records = [dict(zip(COLUMNS, row[:3], strict=True)) for row in trained.rows[:5]]
    answer = service.handle(
        http_event("POST", "/models/fcols/predict", json.dumps({"instances": records}))
    )
    assert answer["statusCode"] == 200, answer["body"]
    assert len(body_of(answer)["predictions"]) == 5


def test_explain_and_the_card_name_the_columns(trained: Trained) -> None:
    record = json.dumps({"instances": [{"f0": 1.0, "f1": -0.5, "f2": 0.2}]})
    done = aiaas(trained.store, "explain", "fcols:2", "--inputs", record, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["features"] == COLUMNS
    # The card's importance plot is drawn from these names.
    store = LocalStore(trained.store)
    manifest = Registry(store).manifest("fcols", "2")
    prefix = version_prefix("fcols", "2")
    background = Background.from_json(store.get_bytes(f"{prefix}/{BACKGROUND_FILE}"), 3)
    model = store.root / prefix / "model.onnx"
    rows = np.array([row[:3] for row in trained.rows[:4]], dtype=np.float32)
    found = global_importance(str(model), manifest, background, rows)
    assert found is not None and found[0] == COLUMNS


def test_a_card_without_a_description_has_no_blank_run(trained: Trained) -> None:
    card = (trained.store / "models/fcols/versions/1/card/card.md").read_text()
    assert card.startswith("# fcols:1\n\n- Task: classification; recipe `logistic`")
    assert "\n\n\n" not in card
    described = (trained.store / "models/fcols/versions/2/card/card.md").read_text()
    assert described.startswith("# fcols:2\n\nSays yes or no.\n\n- Task: classification")


def test_the_card_says_what_the_run_was_trained_with(trained: Trained) -> None:
    # Two runs of one spec (2 and 40 epochs): their cards read alike but for the metrics, so
    # which run was which took opening the manifests (found iterating on a wine classifier).
    cards = [(trained.store / f"models/fcols/versions/{v}/card/card.md").read_text() for v in "12"]
    settings = "; adamw learning rate 0.05; schedule constant; seed 0; "
    for card, epochs in zip(cards, (2, 40), strict=True):
        assert "\n- Features (3): f0, f1, f2; target `outcome`\n" in card
        assert f"\n- Settings: {epochs} epochs at most, batch 64{settings}" in card


def test_compare_scores_against_the_training_target_in_the_file(trained: Trained) -> None:
    data = str(trained.data)
    done = aiaas(trained.store, "compare", "fcols", "1", "2", "--data", data)
    assert done.returncode == 0, done.stderr
    assert "  metrics on 150 labelled rows (column 'outcome', by default):\n" in done.stdout
    report = json.loads(
        aiaas(trained.store, "compare", "fcols", "1", "2", "--data", data, "--json").stdout
    )
    truth = np.array([row[3] for row in trained.rows])
    assert report["metrics"]["label"] == "outcome"
    assert report["metrics"]["rows"] == 150
    # Both versions' accuracy is theirs on the file, scored against the outcome column.
    assert 0.0 <= report["metrics"]["a"]["accuracy"] <= 1.0
    assert report["metrics"]["b"]["accuracy"] > 0.8 and (truth == "yes").mean() < 0.8
    # A column named with --label is still the one read.
    data_with_other = trained.data.with_name("relabelled.csv")
    text = trained.data.read_text().splitlines()
    data_with_other.write_text(
        "\n".join([text[0] + ",truth", *(line + ",no" for line in text[1:])])
    )
    named = aiaas(
        trained.store, "compare", "fcols", "1", "2", "--data", str(data_with_other),
        "--label", "truth", "--json",
    )  # fmt: skip
    assert named.returncode == 0, named.stderr
    assert json.loads(named.stdout)["metrics"]["label"] == "truth"
