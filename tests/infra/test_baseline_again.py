"""`aiaas baseline` run again: decided before the data is read (CLI hunt). It read and
clustered the whole file (28 s for 400,000 rows) only to be refused, exit 1, even for the data
the files were made from, where the README says a job run again is done, not refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.cache import sha256_file
from functions.runtime.manifest import ModelManifest
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_cli_explain import FEATURES, cli, write_csv


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    """iris:1, with feature names, not baselined yet."""
    store = LocalStore(tmp_path / "store")
    model = onnx_factory.linear_classifier(tmp_path / "iris.onnx")
    argv = ["--store", store.uri, "publish", str(model), "--name", "iris", "--labels", "a,b,c"]
    assert main([*argv, "--features", FEATURES]) == 0
    return store


def test_baseline_again_is_decided_before_the_data_is_read(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run again, `aiaas baseline` read and clustered the whole file (28 s for 400,000 rows)
    only to be refused, exit 1, even for the data the files were made from. Now the same
    data and options are done (exit 0), and anything else is refused before the file is read
    (here a file no reader takes), naming what differs; nothing is replaced."""
    data = write_csv(tmp_path / "train.csv", np.random.default_rng(0).normal(size=(40, 4)))
    assert cli(store, capsys, "baseline", "iris:1", str(data))[0] == 0
    held = {n: (tmp_path / f"store/models/iris/versions/1/{n}").read_bytes()
            for n in ("background.json", "drift_baseline.json")}  # fmt: skip
    made = json.loads(held["drift_baseline.json"])["made_from"]
    assert made == {"data": "train.csv", "data_sha256": sha256_file(data), "bins": 10}
    code, out, err = cli(store, capsys, "baseline", "iris", str(data))
    assert (code, err) == (0, "") and out.endswith("--bins 10, --clusters 10): nothing written\n")
    other = tmp_path / "other.csv"
    other.write_bytes(b"\xff\xfe not a CSV any reader takes\n")
    refused = {
        (str(other),): f"made from other data (train.csv, sha256 {made['data_sha256'][:12]}; "
        f"other.csv is {sha256_file(other)[:12]})",
        (str(data), "--bins", "20"): "made from this data with --bins 10 (not 20)",
    }
    for argv, why in refused.items():
        code, out, err = cli(store, capsys, "baseline", "iris", *argv)
        assert (code, out, err) == (1, "", f"aiaas baseline: error: iris:1 already has a "
                                    f"background and a drift baseline, {why}; versions are "
                                    "immutable, so no row was read and nothing written: publish "
                                    "a new version to baseline it again\n")  # fmt: skip
    for name, before in held.items():
        assert (tmp_path / f"store/models/iris/versions/1/{name}").read_bytes() == before


@pytest.mark.parametrize(("theirs", "code"), [("train.csv", 0), ("other.csv", 1)])
def test_a_baseline_written_meanwhile_is_done_or_refused_by_its_data(
    store: LocalStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    theirs: str,
    code: int,
) -> None:
    """Two runs at once: the one that finds both files written when it stores its own is done
    when they were made from its data (as a run again is), else refused; neither replaces."""
    rng = np.random.default_rng(0)
    data = write_csv(tmp_path / "train.csv", rng.normal(size=(40, 4)))
    write_csv(tmp_path / "other.csv", rng.normal(size=(40, 4)))
    from infra.cli import baseline_command

    read = baseline_command.training_rows

    def another_run_first(path: Path, manifest: ModelManifest) -> np.ndarray:
        monkeypatch.setattr(baseline_command, "training_rows", read)  # that run reads as usual
        assert main(["--store", store.uri, "baseline", "iris:1", str(tmp_path / theirs)]) == 0
        capsys.readouterr()
        return read(path, manifest)

    monkeypatch.setattr(baseline_command, "training_rows", another_run_first)
    key = "models/iris/versions/1/drift_baseline.json"
    got, out, err = cli(store, capsys, "baseline", "iris:1", str(data))
    assert got == code
    assert json.loads(store.get_bytes(key))["made_from"]["data"] == theirs
    if code == 0:
        assert out.startswith("iris:1 already has a background and a drift baseline made ")
    else:
        assert "made from other data (other.csv, " in err
        assert err.endswith("; versions are immutable, so nothing was written: publish a new "
                            "version to baseline it again\n")  # fmt: skip
