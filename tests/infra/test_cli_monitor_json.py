"""`aiaas monitor --json` and `--fail-on-drift`: the report a script or a cron job reads, and
an exit status that gates on it (before, only a table for a person, and exit 0 whatever it
said). The real predict service counts the rows, as in test_cli_monitor.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from tests.infra.test_cli_explain import cli, store, write_csv
from tests.infra.test_cli_monitor import serve

__all__ = ["store"]  # the fixture: a linear classifier published as iris:1


@pytest.fixture
def baselined(store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> LocalStore:
    train = np.random.default_rng(0).normal(size=(3000, 4))
    assert cli(store, capsys, "baseline", "iris", str(write_csv(tmp_path / "t.csv", train)))[0] == 0
    return store


def monitor(
    store: LocalStore, capsys: pytest.CaptureFixture[str], *flags: str
) -> tuple[int, str, str]:
    return cli(store, capsys, "monitor", "iris", "--window", "10m", *flags)


def test_the_json_report_says_what_the_table_says_and_the_gate_fails_on_drift(
    baselined: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)  # where a default PNG would land
    live = np.random.default_rng(1).normal(size=(1000, 4))
    live[:, 2] += 2.0
    serve(baselined, tmp_path, live)
    capsys.readouterr()  # the function's own log lines

    code, out, err = monitor(baselined, capsys, "--json")
    assert code == 0, err
    doc = json.loads(out)  # stdout is the document alone
    assert (doc["model"], doc["version"], doc["rows"], doc["snapshots"]) == ("iris", "1", 1000, 1)
    assert (doc["training_rows"], doc["threshold"], doc["enough_rows"]) == (3000, 0.2, True)
    assert doc["drifted"] == ["petal_length", "(prediction)"]
    top = doc["features"][0]
    assert top["name"] == "petal_length" and top["drifted"] and top["judged"] and top["psi"] > 1
    assert {f["name"] for f in doc["features"]} == {
        "sepal_length", "sepal_width", "petal_length", "petal_width", "(prediction)"
    }  # fmt: skip
    shares = doc["label_shares"]
    assert sorted(s["label"] for s in shares) == ["a", "b", "c"]
    assert sum(s["served"] for s in shares) == pytest.approx(1)
    assert sum(s["training"] for s in shares) == pytest.approx(1)
    assert doc["png"] is None and list(tmp_path.glob("*.png")) == []  # none unless asked

    # The table's own figures: the same PSI for each feature.
    code, text, _ = monitor(baselined, capsys, "--no-png")
    table = text[text.index("iris:1: 1000 rows") :].splitlines()
    psi = {line.split()[0]: float(line.split()[1]) for line in table[2:7]}
    assert psi == {f["name"]: round(f["psi"], 4) for f in doc["features"]}

    # The gate: the report first, then exit 1 naming what drifted.
    code, out, err = monitor(baselined, capsys, "--json", "--fail-on-drift")
    assert code == 1 and json.loads(out)["drifted"] == doc["drifted"]
    assert err == (
        "aiaas monitor: error: drift over PSI 0.2 in the last 10m: petal_length, (prediction)\n"
    )
    code, out, err = monitor(baselined, capsys, "--no-png", "--fail-on-drift")
    assert code == 1 and "2 of 5 drifted" in out and "petal_length, (prediction)\n" in err
    # A threshold none reaches: the gate passes.
    assert monitor(baselined, capsys, "--no-png", "--fail-on-drift", "--threshold", "50")[0] == 0


def test_too_few_rows_or_none_are_no_verdict_and_pass_the_gate(
    baselined: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = monitor(baselined, capsys, "--json", "--fail-on-drift")
    doc = json.loads(out)
    assert code == 0 and (doc["rows"], doc["enough_rows"], doc["features"]) == (0, False, [])
    live = np.random.default_rng(1).normal(size=(50, 4))
    live[:, 2] += 2.0  # shifted, but 50 rows cannot tell drift from noise
    serve(baselined, tmp_path, live)
    capsys.readouterr()  # the function's own log lines
    code, out, _ = monitor(baselined, capsys, "--json", "--fail-on-drift")
    doc = json.loads(out)
    assert code == 0 and (doc["rows"], doc["enough_rows"], doc["drifted"]) == (50, False, [])
    assert doc["rows_needed"] == 200 and not any(f["judged"] for f in doc["features"])
