"""Settings of a choice the spec did not make, opsets no exporter here writes, odd YAML keys: each
refused by `aiaas train --check` in one line naming the field (training spec hunt, #4-#7); and
what a run records and shows when a setting could not apply (amp on a CPU) or hid (step's gamma)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from functions.runtime.manifest import ModelManifest
from infra.cli.main import main
from infra.cli.version_settings import varied_settings
from tests.torchless import torch_or_skip
from tests.training.conftest import blobs_rows, spec_dict, write_csv
from tests.training.test_check import BLOBS


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--store", str(tmp_path / "store"), "train", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> str:
    spec = tmp_path / "job.yaml"
    spec.write_text(text)
    code, out, err = _run(tmp_path, capsys, str(spec), "--check")
    assert (code, out) == (1, "") and err.count("\n") == 1, err
    return err.removeprefix("aiaas train: error: ").strip()


def _iris(**top: Any) -> str:
    data = spec_dict("logistic")
    data.update(top)
    return yaml.safe_dump(data)


@pytest.mark.parametrize(
    ("top", "said"),
    [
        (  # a cosine schedule read no gamma; the manifest recorded it all the same
            {"schedule": {"name": "cosine", "gamma": 0.1}},
            "spec field 'schedule.gamma' applies only with schedule.name: step "
            "(this spec: name: cosine); take it out or set schedule.name: step",
        ),
        (
            {"schedule": {"name": "constant", "step_size": 3}},
            "spec field 'schedule.step_size' applies only with schedule.name: step "
            "(this spec: name: constant); take it out or set schedule.name: step",
        ),
        (  # the int8 gate's settings, with no int8 to gate
            {"export": {"max_metric_drop": 2.0}},
            "spec field 'export.max_metric_drop' applies only with export.quantize: true "
            "(this spec: no int8); take it out or set export.quantize: true",
        ),
        (
            {"export": {"quantize": False, "quantize_for": "size"}},
            "spec field 'export.quantize_for' applies only with export.quantize: true "
            "(this spec: no int8); take it out or set export.quantize: true",
        ),
        (  # "expected one of []"
            {"recipe": {"name": "logistic", "params": {"hidden": [8]}}},
            "spec field 'recipe.params': recipe 'logistic' takes no params; remove it",
        ),
    ],
    ids=[
        "cosine-gamma",
        "constant-step-size",
        "max-drop-no-int8",
        "quantize-for-no-int8",
        "params",
    ],
)
def test_a_setting_of_another_choice_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], top: dict[str, Any], said: str
) -> None:
    assert _refused(tmp_path, capsys, _iris(**top)) == said


@pytest.mark.parametrize(
    "top",
    [
        {"schedule": {"name": "cosine", "gamma": 0.5, "step_size": 10}},
        {"export": {"quantize": False, "quantize_for": "speed", "max_metric_drop": 1}},
    ],
    ids=["schedule-defaults", "export-defaults"],
)
def test_a_setting_of_another_choice_written_at_its_default_is_taken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], top: dict[str, Any]
) -> None:
    # Specs that wrote every setting out (a template's defaults) loaded before: they change
    # nothing, so they are not refused as a setting that would have been ignored.
    spec = tmp_path / "job.yaml"
    spec.write_text(_iris(**top))
    code, _, err = _run(tmp_path, capsys, str(spec), "--check")
    assert code == 0, err


def test_an_opset_the_dynamo_exporter_cannot_write_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # opset 30 trained, then the file held opset 18 and the advice was "or exporter: torchscript"
    onnx_defs = pytest.importorskip("onnx.defs")
    highest = onnx_defs.onnx_opset_version()
    assert _refused(tmp_path, capsys, _iris(export={"opset": highest + 2})) == (
        f"spec field 'export.opset' is {highest + 2}; the dynamo exporter here writes opsets "
        f"13 to {highest}: set one of those"
    )
    spec = tmp_path / "top.yaml"
    spec.write_text(_iris(export={"opset": highest}))
    assert _run(tmp_path, capsys, str(spec), "--check")[0] == 0


def test_an_opset_torchscript_cannot_write_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch_or_skip()
    from torch.onnx import _constants

    opset = _constants.ONNX_MAX_OPSET + 1  # "Unsupported onnx_opset_version", after training
    text = _iris(export={"opset": opset, "exporter": "torchscript"})
    assert _refused(tmp_path, capsys, text) == (
        f"spec field 'export.opset' is {opset}; the torchscript exporter here writes opsets "
        f"13 to {_constants.ONNX_MAX_OPSET}: set one of those"
    )


@pytest.mark.parametrize(
    ("extra", "said"),
    [  # sorting `5` with `None` was a TypeError and a traceback
        ("5: a\nnull: b\n", "spec field '5' is unknown; expected one of ['batch_size',"),
        (
            "yes: 1\n",
            "spec field 'True' is unknown (YAML reads that key unquoted as a boolean; quote it); "
            "expected one of",
        ),
    ],
    ids=["number-and-null", "boolean"],
)
def test_unknown_keys_that_are_not_strings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, said: str
) -> None:
    assert _refused(tmp_path, capsys, _iris() + extra).startswith(said)


def test_an_empty_spec_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    said = _refused(tmp_path, capsys, "# nothing yet\n")
    assert said == "the spec is empty; it needs at least name, task, dataset and recipe"


def test_more_cpu_threads_than_cores_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1000 threads on 2 cores trained 70x slower, unsaid
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    spec = tmp_path / "job.yaml"
    spec.write_text(_iris(cpu_threads=1000))
    code, out, err = _run(tmp_path, capsys, str(spec), "--check")
    assert code == 0 and "valid" in out
    assert err == (
        "warning: cpu_threads 1000 is more than this machine's 2 CPU cores: the extra threads "
        "only wait on each other; use 0 (auto) or at most 2\n"
    )
    # A --submit job runs on the Batch host, whose cores this machine's are not
    code, out, err = _run(tmp_path, capsys, str(spec), "--check", "--submit")
    assert (code, "cpu_threads" in err) == (0, False), err


def test_a_run_records_what_ran_and_shows_the_step_schedule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("amp falls back to float32 only where torch sees no GPU")
    top = {
        "epochs": 1,
        "precision": "amp",  # for a GPU host: device auto
        "schedule": {"name": "step", "step_size": 3, "gamma": 0.1},
        "early_stopping": {"patience": 2, "monitor": "loss", "min_delta": 0.01},
    }
    spec = tmp_path / "job.yaml"
    spec.write_text(_iris(**top))
    out_dir = tmp_path / "run"
    code, out, err = _run(tmp_path, capsys, str(spec), "--out", str(out_dir), "--no-progress")
    assert code == 0, err
    assert ", 1 epoch, " in out and "1 epochs" not in out
    assert "note: precision 'amp' is for CUDA GPUs and torch sees none" in err
    manifest = ModelManifest.from_dict(json.loads((out_dir / "manifest.json").read_text()))
    assert manifest.training["precision"] == "fp32"  # it recorded `amp`, which never ran
    card = (out_dir / "card" / "card.md").read_text()
    assert "schedule step (every 3 epochs x 0.1)" in card
    assert "early stopping on loss (patience 2, min delta 0.01)" in card
    # two versions differing only in gamma: `aiaas versions` listed no setting that differs
    schedule = {**manifest.training["schedule"], "gamma": 0.5}
    other = dataclasses.replace(
        manifest, version="2", training={**manifest.training, "schedule": schedule}
    )
    assert varied_settings([manifest, other]) == {manifest.version: "gamma=0.1", "2": "gamma=0.5"}
    assert np.isfinite(manifest.metrics["test"]["accuracy"])


def test_check_says_which_of_two_data_files_it_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # data.csv in the working directory and beside the spec: `--check` printed `data: data.csv`
    (tmp_path / "sub").mkdir()
    for folder in (tmp_path, tmp_path / "sub"):
        write_csv(folder / "data.csv", BLOBS, blobs_rows(60))
    spec = tmp_path / "sub" / "job.yaml"
    spec.write_text(
        yaml.safe_dump(spec_dict("logistic", dataset={"path": "data.csv", "target": "colour"}))
    )
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(tmp_path, capsys, "sub/job.yaml", "--check")
    assert code == 0 and "valid" in out
    assert err == (
        f"warning: dataset.path data.csv is both in the working directory and beside the spec "
        f"({spec.parent.resolve() / 'data.csv'}); the working directory's "
        f"{tmp_path.resolve() / 'data.csv'} is read\n"
    )
