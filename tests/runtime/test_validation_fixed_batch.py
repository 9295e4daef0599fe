"""Refusals for models whose graph fixes the batch axis (`torch.onnx.export` without dynamic
axes): they name the dimension that is really wrong and say how to export instead."""

from __future__ import annotations

import numpy as np
import pytest

from functions.runtime.errors import InvalidInput
from functions.runtime.manifest import ModelFile, ModelManifest, TensorSpec
from functions.runtime.validation import validate_inputs

FILE = ModelFile(sha256="0" * 64, size=1, opset=17, producer="pytorch")


def manifest(inputs: tuple[TensorSpec, ...], output: tuple[int, ...]) -> ModelManifest:
    return ModelManifest(
        name="m",
        version="1",
        task="other",
        inputs=inputs,
        outputs=(TensorSpec("7", "float32", output),),
        file=FILE,
    )


def refusal(model: ModelManifest, **inputs: np.ndarray) -> str:
    with pytest.raises(InvalidInput) as caught:
        validate_inputs(model, inputs, max_batch_size=64, typed=True)
    return caught.value.public_message


def test_rows_to_a_batch_fixed_at_one_are_refused_for_the_dimension_that_is_wrong() -> None:
    # Four images of the wrong width: the batch of four is fine (run one at a time); the width
    # is not. The message said "dimension 0 must be 1", so a caller cut the batch in vain; then
    # [-1, 3, 8, 8], where the model's OIP metadata says [1, 3, 8, 8]: the metadata's shape is
    # said, and that any number of rows is taken.
    cnn = manifest((TensorSpec("x", "float32", (1, 3, 8, 8)),), (1, 3))
    assert refusal(cnn, x=np.zeros((4, 3, 8, 9), np.float32)) == (
        "input 'x' expects shape [1, 3, 8, 8] (any number of rows: the graph's batch of 1 runs "
        "a row at a time); got [4, 3, 8, 9] (dimension 3 must be 8)"
    )
    assert refusal(cnn, x=np.zeros((4, 3, 8), np.float32)) == (
        "input 'x' expects shape [1, 3, 8, 8] (rank 4; any number of rows: the graph's batch of "
        "1 runs a row at a time); got shape [4, 3, 8]"
    )
    assert "got [4, 8, 8, 3] (dimension 1 must be 3); these look like channels-last" in refusal(
        cnn, x=np.zeros((4, 8, 8, 3), np.float32)
    )


def test_a_batch_fixed_where_rows_cannot_run_one_at_a_time_says_how_to_export() -> None:
    # The dynamo exporter given an example batch of 2 and no dynamic_shapes: [2, 4] features.
    two = manifest((TensorSpec("feats", "float32", (2, 4)),), (2, 3))
    assert refusal(two, feats=np.zeros((5, 4), np.float32)) == (
        "input 'feats' expects shape [2, 4]; got [5, 4] (dimension 0 must be 2); if that is "
        "its batch axis, the export fixed it (no dynamic batch axis): send 2 row(s) a request, "
        "or export again with one (torch.onnx.export(..., dynamic_shapes=...), or dynamo=False "
        "with dynamic_axes={'feats': {0: 'batch'}} for every input and output)"
    )
    # A vector of features is one row, not a batch: no export advice.
    vector = manifest((TensorSpec("v", "float32", (3,)),), (2,))
    assert refusal(vector, v=np.zeros(5, np.float32)) == (
        "input 'v' expects shape [3]; got [5] (dimension 0 must be 3)"
    )


def test_an_id_input_of_a_fixed_batch_gets_the_export_advice_too() -> None:
    # ids [4] beside feats [4, 8]: the ids are checked first, and a 1-D input was taken for one
    # row, so the refusal of 3 rows left out the advice docs/registry.md promises.
    tower = manifest(
        (TensorSpec("ids", "int64", (4,)), TensorSpec("feats", "float32", (4, 8))), (4, 1)
    )
    said = refusal(tower, ids=np.zeros(3, np.int64), feats=np.zeros((3, 8), np.float32))
    assert said.startswith(
        "input 'ids' expects shape [4]; got [3] (dimension 0 must be 4); if that is its batch "
        "axis, the export fixed it (no dynamic batch axis): send 4 row(s) a request"
    )
