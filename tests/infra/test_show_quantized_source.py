"""`aiaas show` of a `publish --quantize` variant names its source's data files.

The manifest records the source a variant was made from: its model file and, for weights kept
outside it, each data file (`model.onnx.data`: name, size, sha256), so the float32 original can
be matched later. `aiaas show --json` printed them; the text left them out (hunt_journey4), and
a source of a 374-byte model.onnx read as the whole of a 1.2 MB model's weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.runtime.cache import sha256_file
from infra.cli.main import main
from tests.onnx_factory import matmul_chain


def test_show_names_the_data_files_of_a_variants_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = matmul_chain(tmp_path / "src" / "model.onnx", [(16, 64), (64, 4)], external=True)
    data = model.with_name("model.onnx.data")
    store = str(tmp_path / "store")
    argv = ["--store", store, "publish", str(model), "--name", "mm", "--quantize", "fp16"]
    assert main([*argv, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["--store", store, "show", "mm"]) == 0
    text = capsys.readouterr().out
    size, sha256 = data.stat().st_size, sha256_file(data)
    assert "    source:\n      data_files:\n" in text, text
    assert f"        model.onnx.data: {size} bytes, sha256 {sha256}\n" in text, text
    assert f"      file: model.onnx\n      sha256: {sha256_file(model)}\n" in text, text
    assert main(["--store", store, "show", "mm", "--json"]) == 0  # as it was: in the manifest
    source = json.loads(capsys.readouterr().out)["extras"]["quantization"]["source"]
    assert source["data_files"] == [{"file": "model.onnx.data", "sha256": sha256, "size": size}]
