"""`aiaas monitor NAME` after the alias moved: the versions that answered rows in the window but
are not the alias's now are named, with the command that judges them (hunt_journey3 1).

Before, a promote made the window's served version invisible: `monitor churn --window 1h
--fail-on-drift` printed "0 rows served ... nothing to compare: ... rows of the last interval show
later" for the version promoted a minute ago and exited 0, while the version that had served the
hour's drifted rows went unnamed. The real predict service serves the rows through the alias,
on a directory store and on S3 (moto's server), and the CLI runs as a user runs it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store_api import ObjectStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_cli_explain import FEATURES, write_csv
from tests.infra.test_cli_monitor import serve


def cli(store: ObjectStore, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--store", store.uri, *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def moved(store: ObjectStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> ObjectStore:
    """iris:1 served 1000 rows, petal_length moved by +2 (drifted), then production moved to
    iris:2, which has answered nothing since."""
    for version, seed in (("1", 0), ("2", 2)):
        model = onnx_factory.linear_classifier(tmp_path / f"m{version}.onnx", seed=seed)
        publish = ["publish", str(model), "--name", "iris", "--labels", "a,b,c"]
        assert cli(store, capsys, *publish, "--features", FEATURES)[0] == 0
        train = write_csv(tmp_path / "train.csv", np.random.default_rng(0).normal(size=(3000, 4)))
        assert cli(store, capsys, "baseline", f"iris:{version}", str(train))[0] == 0
    assert cli(store, capsys, "promote", "iris", "1")[0] == 0
    live = np.random.default_rng(1).normal(size=(1000, 4))
    live[:, 2] += 2.0
    serve(store, tmp_path, live)  # type: ignore[arg-type]  # any store: the service reads it
    assert cli(store, capsys, "promote", "iris", "2")[0] == 0
    return store


def test_the_version_that_served_the_window_is_named_after_the_alias_moved(
    moved: ObjectStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(moved, capsys, "monitor", "iris", "--window", "10m", "--no-png")
    assert code == 0, err
    assert "iris:2: 0 rows served in the last 10m" in out  # the alias's version now: as before
    # Where the rows went, not a wait for a flush that never comes (review_rev10 3).
    assert (
        "nothing to compare: the 1000 rows counted in the last 10m were answered by iris:1, "
        "not iris:2 (see the note below)\n"
    ) in out
    assert "show later" not in out
    note = (
        "note: iris:1 also answered 1000 rows in the last 10m, not judged: `iris` does not serve "
        "it now (an earlier target, another alias, or callers pinning it); `aiaas monitor iris:1 "
        "--window 10m` judges them\n"
    )
    assert note in err
    # The command it names judges them: there is the drift the alias's version could not show.
    code, out, err = cli(moved, capsys, "monitor", "iris:1", "--window", "10m", "--no-png",
                         "--fail-on-drift")  # fmt: skip
    assert code == 1 and "iris:1: 1000 rows served in the last 10m" in out
    assert "drift over PSI 0.2 in the last 10m: petal_length" in err
    assert "also answered" not in err  # a pinned version is judged alone, nothing else named
    # Scripts read the same line in not_judged; an alias named in the reference is named so.
    code, out, err = cli(moved, capsys, "monitor", "iris@production", "--window", "10m", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["version"] == "2" and doc["rows"] == 0
    [line] = doc["not_judged"]
    assert line.startswith("iris:1 also answered 1000 rows in the last 10m, not judged: "
                           "iris@production does not serve it now")  # fmt: skip
    assert line.endswith("`aiaas monitor iris:1 --window 10m` judges them")


def test_a_window_before_the_rows_names_nothing(
    moved: ObjectStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only rows in the window count: a past period with none names no other version."""
    code, out, err = cli(moved, capsys, "monitor", "iris", "--window", "1h", "--until",
                         "2026-01-01T00:00", "--no-png")  # fmt: skip
    assert code == 0, err
    assert "also answered" not in err
    assert "so rows of the last interval show later" in out  # no version has rows: wait


def test_the_named_command_judges_as_the_gate_that_named_it(
    moved: ObjectStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command named for iris:1 carries the flags that change the verdict: it dropped
    --threshold, so the gate's rows were judged at PSI 0.2, not the gate's 50, and failed where
    the gate would not have (review_rev10 2)."""
    gate = ["--window", "10m", "--threshold", "50", "--fail-on-drift", "--no-png"]
    code, _, err = cli(moved, capsys, "monitor", "iris", *gate)
    assert code == 0, err
    named = "aiaas monitor iris:1 --window 10m --threshold 50 --fail-on-drift"
    assert f"`{named}` judges them" in err, err
    code, _, err = cli(moved, capsys, *named.split()[1:], "--no-png")
    assert code == 0, err  # PSI of petal_length under 50: as the gate judges
    code, _, err = cli(moved, capsys, "monitor", "iris:1", "--window", "10m", "--fail-on-drift",
                       "--no-png")  # fmt: skip
    assert code == 1 and "drift over PSI 0.2" in err  # the default, which it named before
    code, _, err = cli(moved, capsys, "monitor", "iris", "--window", "10m", "--threshold",
                       "0.1234567", "--no-png")  # fmt: skip
    assert "`aiaas monitor iris:1 --window 10m --threshold 0.1234567` judges them" in err, err
