"""`open('iso.onnx', 'wb').write(to_onnx(...).SerializeToString())` where `to_onnx` raises
(skl2onnx asking for `target_opset` for an IsolationForest) leaves a 0-byte file. Published,
it was refused in onnxruntime's words: "No graph was found in the protobuf". It is now
refused saying the file is empty and to export it again; nothing is written."""

from __future__ import annotations

from pathlib import Path

from functions.runtime.store import LocalStore
from tests.cli_run import run


def test_an_empty_model_file_is_refused_saying_so(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    empty = tmp_path / "iso.onnx"
    empty.write_bytes(b"")
    code, _, err = run(store, "publish", str(empty), "--name", "iso")
    assert code == 1
    assert f"{empty} is empty (0 bytes)" in err and "export it again" in err
    assert "protobuf" not in err
    assert not store.exists("models/iso/versions/1/manifest.json")
