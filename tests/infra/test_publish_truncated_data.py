"""`aiaas publish` of a model whose external data file is shorter than its tensors need (a
truncated copy, a download cut short). It was refused as "is not an ONNX model onnxruntime can
load", after onnxruntime's own red C++ log line on the terminal. The file is now named as too
short from the offsets and lengths the model gives, before onnxruntime runs; a failure only
onnxruntime finds is said once, in publish's error line, with no log line of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx

from bench.synthetic_transformer import SyntheticShape, write_model
from tests import onnx_factory

REPO = Path(__file__).resolve().parents[2]


def exported(root: Path) -> tuple[Path, Path]:
    """A ~300 KB transformer-style model and its `model.onnx.data`."""
    model = root / "export" / "model.onnx"
    write_model(model, SyntheticShape.of_bytes(300_000, width=32), external=True)
    return model, model.with_name("model.onnx.data")


def publish(model: Path, store: Path) -> subprocess.CompletedProcess[str]:
    """Through a process of its own: onnxruntime's log goes to the process's stderr (fd 2)."""
    argv = ["--store", str(store), "publish", str(model), "--name", "m", "--no-progress"]
    return subprocess.run(
        [sys.executable, "-m", "infra.cli.main", *argv],
        env=os.environ | {"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def last_tensor(model: Path) -> tuple[str, int, int]:
    """(name, offset, length) of the tensor lying last in the data file, its length from its
    shape (what onnxruntime reads when the model gives none)."""
    proto = onnx.load(str(model), load_external_data=False)
    spans = []
    for tensor in proto.graph.initializer:
        offset = {e.key: e.value for e in tensor.external_data}.get("offset")
        if offset is not None:
            itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
            spans.append((tensor.name, int(offset), itemsize * int(np.prod(tensor.dims))))
    return max(spans, key=lambda span: span[1])


def test_a_truncated_data_file_is_named_as_too_short(tmp_path: Path) -> None:
    model, data = exported(tmp_path)
    name, offset, length = last_tensor(model)
    cut = offset + length // 2  # the last tensor cut in half, the others whole
    with data.open("r+b") as handle:
        handle.truncate(cut)
    run = publish(model, tmp_path / "store")
    assert (run.returncode, run.stderr) == (
        1,
        f"aiaas publish: error: {model} keeps weights for {name!r} at bytes {offset}-"
        f"{offset + length} of 'model.onnx.data', which has only {cut} bytes (a truncated "
        "copy?); publish the model with its complete data files\n",
    )
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.onnx"))


def test_onnxruntimes_own_refusal_prints_no_log_line(tmp_path: Path) -> None:
    """Without the lengths the model gives, onnxruntime alone finds the file short (reading the
    bias to fold it into a Gemm): its error is publish's one line, with no red log line."""
    model = tmp_path / "export" / "model.onnx"
    model.parent.mkdir()
    proto = onnx.load(str(onnx_factory.linear_classifier(tmp_path / "linear.onnx", 16, 3)))
    onnx.save_model(
        proto, str(model), save_as_external_data=True, size_threshold=0, location="model.onnx.data"
    )
    proto = onnx.load(str(model), load_external_data=False)
    for tensor in proto.graph.initializer:
        kept = [(e.key, e.value) for e in tensor.external_data if e.key != "length"]
        del tensor.external_data[:]
        for key, value in kept:
            tensor.external_data.add(key=key, value=value)
    onnx.save_model(proto, str(model))
    _, offset, length = last_tensor(model)
    with model.with_name(f"{model.name}.data").open("r+b") as handle:
        handle.truncate(offset + length // 2)
    run = publish(model, tmp_path / "store")
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1, run.stderr  # one line: no log line of onnxruntime's
    assert run.stderr.startswith(f"aiaas publish: error: {model} is not an ONNX model")
    assert "\x1b[" not in run.stderr
