"""`publish`'s "the same model file as NAME:V, published again" (and `--json`'s
`same_file_as`) compared the model file alone: a torch export keeps its weights in
`model.onnx.data`, so other weights beside the same graph (fine-tuned weights, a data file
copied in from another export) were called a duplicate of the version they differ from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_image_fixed_batch import fixed_batch_cnn


def export(folder: Path, seed: int) -> Path:
    """The test CNN with weights drawn from `seed`, saved as torch saves it: the graph in
    cnn.onnx, every weight in cnn.onnx.data (the graph file is the same for every seed)."""
    folder.mkdir()
    model = onnx.load(fixed_batch_cnn(folder / "plain.onnx", batch="N"))
    rng = np.random.default_rng(seed)
    for i, tensor in enumerate(model.graph.initializer):
        values = rng.normal(size=numpy_helper.to_array(tensor).shape).astype(np.float32)
        model.graph.initializer[i].CopyFrom(numpy_helper.from_array(values, tensor.name))
    onnx.save(model, folder / "cnn.onnx", save_as_external_data=True, location="cnn.onnx.data",
              size_threshold=0)  # fmt: skip
    return folder / "cnn.onnx"


def publish_json(store: LocalStore, path: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main(["--store", store.uri, "publish", str(path), "--name", "cnn", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_other_weights_beside_the_same_graph_are_no_duplicate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    first, second = export(tmp_path / "a", 1), export(tmp_path / "b", 2)
    assert first.read_bytes() == second.read_bytes()  # the graph: the same bytes
    assert publish_json(store, first, capsys)["same_file_as"] == []
    doc = publish_json(store, second, capsys)
    assert (doc["version"], doc["same_file_as"]) == ("2", [])
    assert not any("the same model file" in note for note in doc["notes"])
    shutil.copy(tmp_path / "b/cnn.onnx.data", tmp_path / "a/cnn.onnx.data")  # b's weights
    doc = publish_json(store, first, capsys)  # the same graph and weights as version 2
    assert (doc["version"], doc["same_file_as"]) == ("3", ["2"])
    assert doc["notes"][-1] == "note: the same model file as cnn:2, published again"
