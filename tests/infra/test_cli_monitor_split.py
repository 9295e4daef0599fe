"""`aiaas monitor` on an alias split by `promote --weight`: each version the alias answers with
is judged on its own rows (before, only the main version, without a word, so a cron's
`--fail-on-drift` passed whatever the canary's share of the traffic did). The real predict
service routes the requests through the alias and counts the rows of each version."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_cli_explain import FEATURES, cli, store, write_csv
from tests.infra.test_cli_monitor import serve

__all__ = ["store"]  # the fixture: a linear classifier published as iris:1


@pytest.fixture
def split(store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> LocalStore:
    """iris@production: 1 (50%) and the canary 2 (50%); 2's baseline has petal_length moved
    by +2, so the same served rows drift on 2 and not on 1."""
    model = onnx_factory.linear_classifier(tmp_path / "m2.onnx", seed=2)
    publish = ["publish", str(model), "--name", "iris", "--labels", "a,b,c"]
    assert cli(store, capsys, *publish, "--features", FEATURES)[0] == 0
    train = np.random.default_rng(0).normal(size=(3000, 4))
    assert (
        cli(store, capsys, "baseline", "iris:1", str(write_csv(tmp_path / "1.csv", train)))[0] == 0
    )
    train[:, 2] += 2.0
    assert (
        cli(store, capsys, "baseline", "iris:2", str(write_csv(tmp_path / "2.csv", train)))[0] == 0
    )
    assert cli(store, capsys, "promote", "iris", "1")[0] == 0
    assert cli(store, capsys, "promote", "iris", "2", "--weight", "0.5")[0] == 0
    serve(store, tmp_path, np.random.default_rng(1).normal(size=(1000, 4)))
    capsys.readouterr()  # the function's own log lines
    return store


def test_each_version_of_a_split_alias_is_judged_and_the_gate_fails_on_the_canary(
    split: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def monitor(*flags: str) -> tuple[int, str, str]:
        return cli(split, capsys, "monitor", "iris@production", "--window", "10m", *flags)

    code, out, err = monitor("--json")
    assert code == 0, err
    doc = json.loads(out)
    canary = doc["canary"]
    assert (doc["version"], doc["share"], canary["version"], canary["share"]) == (
        "1",
        0.5,
        "2",
        0.5,
    )
    assert doc["rows"] > 0 and canary["rows"] > 0 and doc["rows"] + canary["rows"] == 1000
    assert doc["drifted"] == [] and "petal_length" in canary["drifted"]
    assert doc["not_judged"] == []

    png = tmp_path / "drift.png"
    code, out, err = monitor("--png", str(png), "--fail-on-drift")
    assert code == 1
    assert f"iris:1 (main version, 50% of requests): {doc['rows']} rows served" in out
    assert f"iris:2 (canary, 50% of requests): {canary['rows']} rows served" in out
    assert "0 of 5 drifted" in out and "petal_length" in out.split("iris:2 (canary")[1]
    assert png.is_file() and (tmp_path / "drift-2.png").is_file()  # one PNG a version
    assert "drift over PSI 0.2 in the last 10m: iris:2 (petal_length" in err
    code, out, err = monitor("--json", "--fail-on-drift")
    assert code == 1 and json.loads(out)["canary"]["drifted"] == canary["drifted"]
    # A pinned version is judged alone, as before.
    code, out, _ = cli(split, capsys, "monitor", "iris:1", "--window", "10m", "--json")
    assert code == 0 and json.loads(out)["canary"] is None and json.loads(out)["share"] == 1.0


def test_a_canary_without_a_baseline_is_named_as_not_judged(
    split: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    split.delete(f"{version_prefix('iris', '2')}/{BASELINE_FILE}")  # published without one
    assert cli(split, capsys, "promote", "iris", "2", "--weight", "0.2")[0] == 0
    code, out, err = cli(split, capsys, "monitor", "iris", "--window", "10m", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["version"], doc["share"]) == ("1", 0.8)
    assert (
        doc["canary"]["version"] == "2" and "has no drift baseline" in doc["canary"]["not_judged"]
    )
    assert "note: iris:2 (canary, 20% of requests) is not judged: iris:2 has no drift" in err
    assert doc["not_judged"] and "iris:2" in doc["not_judged"][0]


def test_a_main_version_without_a_baseline_still_lets_the_canary_be_judged(
    split: LocalStore, capsys: pytest.CaptureFixture[str]
) -> None:
    # Older versions were published before baselines; the new candidate has one. Monitor refused
    # the whole alias ("iris:1 has no drift baseline"), so the canary's drift was never seen.
    split.delete(f"{version_prefix('iris', '1')}/{BASELINE_FILE}")
    code, out, err = cli(split, capsys, "monitor", "iris", "--window", "10m", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["version"] == "1" and "rows" not in doc  # its line says why, in not_judged
    assert doc["not_judged"][0].startswith("iris:1 (main version, 50% of requests) is not judged")
    assert doc["canary"]["version"] == "2" and "petal_length" in doc["canary"]["drifted"]
    assert "note: iris:1 (main version, 50% of requests) is not judged: iris:1 has no" in err
    code, out, err = cli(
        split, capsys, "monitor", "iris", "--window", "10m", "--fail-on-drift", "--no-png"
    )
    assert code == 1 and "iris:2 (canary, 50% of requests):" in out
    assert not out.startswith("\n")  # no blank line for the table not printed
    assert "drift over PSI 0.2 in the last 10m: iris:2 (petal_length" in err
    # Neither judged: the refusal, as for a version alone.
    split.delete(f"{version_prefix('iris', '2')}/{BASELINE_FILE}")
    code, out, err = cli(split, capsys, "monitor", "iris", "--window", "10m")
    assert code == 1 and out == "" and "iris:1 has no drift baseline" in err


@pytest.mark.parametrize(
    ("weight", "main", "canary"), [("0.004", "99.6%", "0.4%"), ("0.999", "0.1%", "99.9%")]
)
def test_a_small_share_is_said_as_promote_says_it_not_rounded_to_0(
    split: LocalStore, capsys: pytest.CaptureFixture[str], weight: str, main: str, canary: str
) -> None:
    # A canary "(0% of requests)" with 180 rows served read as a routing bug.
    assert cli(split, capsys, "promote", "iris", "2", "--weight", weight)[0] == 0
    code, out, err = cli(split, capsys, "monitor", "iris", "--window", "10m", "--no-png")
    assert code == 0, err
    assert f"iris:1 (main version, {main} of requests)" in out
    assert f"iris:2 (canary, {canary} of requests)" in out
