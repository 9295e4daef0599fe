"""`aiaas train --json`: a CI step reads the published version from stdout, nothing else there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.torchless import torch_or_skip
from tests.training.conftest import spec_dict

REPO = Path(__file__).resolve().parents[2]


def write_spec(tmp_path: Path) -> Path:
    spec = tmp_path / "job.yaml"
    # --json's documents are the point, not dynamo's export (seconds, in a fresh process too)
    export = {"exporter": "torchscript"}
    spec.write_text(yaml.safe_dump(spec_dict("logistic", name="iris-ci", export=export)))
    return spec


def train(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    spec = write_spec(tmp_path)
    store = tmp_path / "store"
    return subprocess.run(
        [sys.executable, "-m", "infra.cli.main", "--store", str(store), "train", str(spec),
         "--out", str(tmp_path / "run"), *argv],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        timeout=300,
        check=False,
    )  # fmt: skip


def test_a_published_run_is_one_json_document_on_stdout(tmp_path: Path) -> None:
    torch_or_skip()  # it trains
    done = train(tmp_path, "--publish", "--alias", "staging", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # the whole of stdout: progress and notes are on stderr
    manifest = Registry(LocalStore(str(tmp_path / "store"))).manifest("iris-ci", "1")
    assert result["ref"] == "iris-ci:1" and result["published"] is True
    assert result["alias"] == "staging" and result["store"] == str((tmp_path / "store").resolve())
    assert result["metrics"] == manifest.metrics["test"]
    assert result["parity"]["max_abs_diff"] <= result["parity"]["tolerance"]
    assert Path(result["artifacts"]).is_dir()


def test_a_dry_run_says_it_published_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    torch_or_skip()  # it trains
    # In process (the run above holds stdout's purity in a real process): a subprocess here
    # cost 8 s of imports for the same document.
    write_spec(tmp_path)
    argv = ["--store", str(tmp_path / "store"), "train", str(tmp_path / "job.yaml")]
    assert main([*argv, "--out", str(tmp_path / "run"), "--alias", "staging", "--json"]) == 0
    out, err = capfd.readouterr()
    result = json.loads(out)
    assert (result["published"], result["store"], result["alias"]) == (False, None, None)
    assert (result["version"], result["ref"]) == (None, None)  # no version is in any store
    assert "--alias only takes effect with --publish" in err
    assert not (tmp_path / "store").exists()


def test_check_with_json_is_one_json_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # README: with --json stdout holds one JSON document; `--check --json` printed text lines.
    write_spec(tmp_path)
    argv = ["--store", str(tmp_path / "store"), "train", str(tmp_path / "job.yaml")]
    assert main([*argv, "--check", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {
        "spec": str(tmp_path / "job.yaml"),
        "valid": True,
        "model": "iris-ci",
        "task": "classification",
        "recipe": "logistic",
        "data": {
            "source": "bundled:iris.csv",
            "rows": 150,
            "all_read": True,
            "inputs": "4 features: sepal_length, sepal_width, petal_length, petal_width",
            "target": "target 'species': 3 classes",
        },
        "warnings": [],
    }
    assert err == ""
