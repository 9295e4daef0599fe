"""Input validation against a manifest: every failure is a 422 naming the input and the expectation."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from http import HTTPStatus
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto

from functions.runtime.errors import InvalidInput
from functions.runtime.finite import BLAS_THREADED, all_finite
from functions.runtime.manifest import ModelFile, ModelManifest, TensorSpec
from functions.runtime.model import LoadedModel
from functions.runtime.validation import describe, validate_inputs
from tests import onnx_factory

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ModelManifest(
    name="m",
    version="1",
    task="other",
    inputs=(
        TensorSpec("x", "float32", (-1, 4), finite=True),
        TensorSpec("ids", "int32", (-1,)),
        TensorSpec("text", "string", (-1, 1)),
    ),
    outputs=(TensorSpec("y", "float32", (-1, 1)),),
    file=ModelFile(sha256="0" * 64, size=1, opset=17, producer="test"),
)


def feeds(rows: int = 2, **override: np.ndarray) -> dict[str, np.ndarray]:
    base = {
        "x": np.zeros((rows, 4), np.float32),
        "ids": np.arange(rows, dtype=np.int32),
        "text": np.array([["hi"]] * rows),
    }
    return base | override


def check(
    inputs: dict[str, np.ndarray], *, typed: bool = True, limit: int = 8
) -> dict[str, np.ndarray]:
    return validate_inputs(MANIFEST, inputs, max_batch_size=limit, typed=typed)


def refused(
    message: str, inputs: dict[str, np.ndarray], *, typed: bool = True, limit: int = 8
) -> None:
    with pytest.raises(InvalidInput) as caught:
        check(inputs, typed=typed, limit=limit)
    assert caught.value.status == HTTPStatus.UNPROCESSABLE_ENTITY
    assert caught.value.public_message == caught.value.message == message


def test_valid_inputs_pass_with_their_element_types() -> None:
    checked = check(feeds())
    assert {k: v.dtype.kind for k, v in checked.items()} == {"x": "f", "ids": "i", "text": "O"}
    assert checked["x"].dtype == np.float32 and checked["ids"].dtype == np.int32


def test_missing_input_names_what_is_expected() -> None:
    inputs = feeds()
    del inputs["ids"]
    refused("missing input 'ids' (ids: int32 [-1])", inputs)


def test_misspelt_input_is_named_beside_the_missing_one() -> None:
    inputs = feeds()
    inputs["Ids"] = inputs.pop("ids")
    refused(
        "missing input 'ids' (ids: int32 [-1]); got 'Ids', which this model does not take", inputs
    )


def test_unknown_input_lists_the_model_inputs() -> None:
    refused(
        "unknown input 'extra'; this model takes x: float32 [-1, 4], ids: int32 [-1], "
        "text: string [-1, 1]",
        feeds(extra=np.zeros(2)),
    )


def test_safe_casts_are_applied() -> None:
    checked = check(feeds(x=np.zeros((2, 4), np.float16), ids=np.arange(2, dtype=np.int8)))
    assert checked["x"].dtype == np.float32 and checked["ids"].dtype == np.int32
    text = check(feeds(text=np.array([[b"a"], [b"b"]])))["text"]
    assert text.dtype == object


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"x": np.zeros((2, 4), np.float64)},
            "input 'x' expects FP32 (float32); got FP64 (float64), which does not convert safely: send FP32 (numpy .astype('float32'))",
        ),
        (
            {"ids": np.arange(2, dtype=np.int64)},
            "input 'ids' expects INT32 (int32); got INT64 (int64), which does not convert safely: send INT32 (numpy .astype('int32'))",
        ),
        (
            {"ids": np.arange(2, dtype=np.float32)},
            "input 'ids' expects INT32 (int32); got FP32 (float32), which does not convert safely: send INT32 (numpy .astype('int32'))",
        ),
        (
            # .astype('int32') would send 1 (was told to, as for whole numbers)
            {"ids": np.array([1.5, 2.0], dtype=np.float32)},
            "input 'ids' expects INT32 (int32); got FP32 (float32), which does not convert safely: 1.5 is not a whole number",
        ),
        (
            # .astype('int32') would wrap 2**40 to 0
            {"ids": np.array([1, 2**40], dtype=np.int64)},
            "input 'ids' expects INT32 (int32); got INT64 (int64), which does not convert safely: values are outside [-2147483648, 2147483647] (1099511627776 at index [1])",
        ),
        (
            # .astype('float32') would send inf (was told to, as for values in range)
            {"x": np.array([[1.0, -1e39, 2.0, 3.0], [0.0] * 4], dtype=np.float64)},
            "input 'x' expects FP32 (float32); got FP64 (float64), which does not convert safely: "
            "-1e+39 is out of float32's range (at most 3.4028235e+38 either way; .astype('float32') "
            "would send inf): send values float32 can hold",
        ),
        ({"x": np.zeros((2, 4), bool)}, "input 'x' expects FP32 (float32); got true/false values"),
        (
            # the value, as a record by feature name is told (before: "got text or null
            # values, which does not convert safely")
            {"x": np.array([["a"] * 4] * 2)},
            "input 'x' value [0, 0] must be a number, FP32 (float32); got 'a'",
        ),
        (
            {"text": np.array([[1.0], [2.0]])},
            "input 'text' expects BYTES (string); got FP64 (float64), which does not convert safely",
        ),
        (
            # an object: was "got text or null values", which contradicts "expects string"
            {"text": np.array([[{"a": 1}], ["b"]], dtype=object)},
            "input 'text' expects BYTES (string); got a JSON object where text goes: send each value "
            "as a JSON string",
        ),
        (
            {"text": np.zeros((0, 1))},  # [] as a record's field: was "got float64"
            "input 'text' expects BYTES (string); got an empty list: send one value a row",
        ),
        (
            # pandas writes a missing text as null: what to send instead (before: "got text
            # or null values, which does not convert safely", of a string input).
            {"text": np.array([["a"], [None]], dtype=object)},
            "input 'text' holds a null, which a string input cannot: send \"\" for an empty "
            'value (an empty cell is the category "" to a model trained on a table)',
        ),
    ],
)
def test_unsafe_casts_are_refused(override: dict[str, np.ndarray], message: str) -> None:
    refused(message, feeds() | override)


def test_untyped_json_numbers_convert_when_values_fit() -> None:
    checked = check(feeds(x=np.zeros((2, 4), np.float64), ids=np.array([1, 2])), typed=False)
    assert checked["x"].dtype == np.float32 and checked["ids"].dtype == np.int32
    refused(
        "input 'ids' expects int32; values are outside [-2147483648, 2147483647] (1099511627776 at index [1])",
        feeds(ids=np.array([1, 2**40])),
        typed=False,
    )
    refused(
        "input 'ids' expects int32; 1.5 is not a whole number",
        feeds(ids=np.array([1.5, 2.0])),
        typed=False,
    )
    refused(
        "input 'ids' expects int32; nan is not a whole number",
        feeds(ids=np.array([np.nan, 2.0])),
        typed=False,
    )
    assert check(feeds(ids=np.array([6.0, -2.0])), typed=False)["ids"].tolist() == [6, -2]
    refused(  # an OIP tensor says what it is: FP64 is no int32
        "input 'ids' expects INT32 (int32); got FP64 (float64), which does not convert safely: send INT32 (numpy .astype('int32'))",
        feeds(ids=np.array([6.0, 2.0])),
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"x": np.zeros((2, 4, 1), np.float32)},
            "input 'x' expects shape [-1, 4] (rank 2); got shape [2, 4, 1]",
        ),
        ({"x": np.zeros(4, np.float32)}, "input 'x' expects shape [-1, 4] (rank 2); got shape [4]"),
        (
            {"x": np.zeros((2, 5), np.float32)},
            "input 'x' expects shape [-1, 4]; got [2, 5] (dimension 1 must be 4)",
        ),
        (
            {"text": np.array([["a", "b"], ["c", "d"]])},
            "input 'text' expects shape [-1, 1]; got [2, 2] (dimension 1 must be 1)",
        ),
    ],
)
def test_rank_and_static_dims_are_checked(override: dict[str, np.ndarray], message: str) -> None:
    refused(message, feeds() | override)


def test_batch_size_limits() -> None:
    refused("input 'x' has a batch of 9 rows; the limit is 8", feeds(rows=9))
    check(feeds(rows=8))
    refused("input 'x' has an empty batch; send at least one row", feeds(rows=0))
    refused(
        "inputs disagree on batch size (2 vs 3 in 'ids')",
        feeds(ids=np.arange(3, dtype=np.int32)),
    )


MISSING = (
    "input 'x' at index [1, 2] is a missing value (null or NaN); this model takes finite "
    "numbers only: fill it in, or publish a model whose graph takes them (`aiaas publish` "
    "reads an XGBoost or LightGBM export's trees and a SimpleImputer as "
    "taking them; `--allow-nonfinite` for another graph, but not skl2onnx's "
    "scikit-learn forests, which send every missing value one way)"
)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.nan, MISSING),  # a gap in the data: how to publish a model that takes gaps
        (np.inf, "input 'x' must be finite; found infinity at index [1, 2]"),
        (-np.inf, "input 'x' must be finite; found -infinity at index [1, 2]"),
    ],
)
def test_non_finite_values_are_refused_where_the_manifest_asks(value: float, message: str) -> None:
    x = np.zeros((2, 4), np.float32)
    x[1, 2] = value
    refused(message, feeds(x=x))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_a_finite_number_past_float32s_range_is_named_as_such() -> None:
    # JSON numbers decode as float64; 1e39 becomes infinity in float32, which the caller never
    # sent: the error says the number is out of range, not that it is not finite.
    x = np.zeros((2, 4))
    x[1, 2] = -1e39
    refused(
        "input 'x' has -1e+39 at index [1, 2], out of float32's range (±3.4e+38)",
        feeds(x=x),
        typed=False,
    )
    x[1, 2] = np.inf  # an infinity sent as such is one
    refused("input 'x' must be finite; found infinity at index [1, 2]", feeds(x=x), typed=False)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_an_input_taking_gaps_takes_nan_and_still_refuses_infinity() -> None:
    """`gaps` (a float input its graph imputes): NaN, the Imputer's to fill, is taken; +-inf
    and 1e39 (float32's infinity) are refused as a finite-only input refuses them."""
    spec = TensorSpec("x", "float32", (-1, 4), finite=True, gaps=True)
    manifest = replace(MANIFEST, inputs=(spec, *MANIFEST.inputs[1:]))
    x = np.zeros((2, 4))
    x[1, 2], x[0, 1] = np.nan, np.nan
    assert (
        np.isnan(validate_inputs(manifest, feeds(x=x), max_batch_size=8, typed=False)["x"]).sum()
        == 2
    )
    for value, said in (
        (np.inf, "must be finite; found infinity at index [1, 3]"),
        (-np.inf, "must be finite; found -infinity at index [1, 3]"),
        (1e39, "has 1e+39 at index [1, 3], out of float32's range (±3.4e+38)"),
    ):
        x[1, 3] = value
        with pytest.raises(InvalidInput, match=re.escape(f"input 'x' {said}")):
            validate_inputs(manifest, feeds(x=x), max_batch_size=8, typed=False)


def test_a_number_past_float32s_range_writes_no_warning() -> None:
    """numpy's RuntimeWarning for its cast ("overflow encountered in cast") was two lines of
    text on stderr that any caller could write, with AIAAS_LOG_FORMAT=json too. In a process
    of its own: pytest resets the warning filters a module sets as it is imported."""
    code = (
        "import numpy as np\n"
        "from functions.runtime.errors import InvalidInput\n"
        "from tests.runtime.test_validation import check, feeds\n"
        "x = np.zeros((2, 4))\n"
        "x[1, 2] = -1e39\n"
        "try:\n"
        "    check(feeds(x=x), typed=False)\n"
        "except InvalidInput as refused:\n"
        "    print(refused.message)\n"
    )
    ran = subprocess.run(
        [sys.executable, "-W", "always", "-c", code], cwd=ROOT, capture_output=True, text=True
    )
    assert (ran.returncode, ran.stderr) == (0, "")
    assert ran.stdout == "input 'x' has -1e+39 at index [1, 2], out of float32's range (±3.4e+38)\n"


def test_non_finite_values_pass_where_the_manifest_allows(tmp_path: Path) -> None:
    path = onnx_factory.identity(tmp_path / "id.onnx", TensorProto.FLOAT, ["N", 2])
    model = LoadedModel(onnx_factory.manifest_for(path, "id", "1", finite=False), path)
    out = model.predict({"x": np.array([[np.nan, np.inf]], np.float32)})["y"]
    assert np.isnan(out[0, 0]) and np.isinf(out[0, 1])
    strict = LoadedModel(onnx_factory.manifest_for(path, "id", "1", finite=True), path)
    with pytest.raises(InvalidInput, match=r"input 'x' at index \[0, 0\] is a missing value"):
        strict.predict({"x": np.array([[np.nan, 1.0]], np.float32)})


def test_describe() -> None:
    assert describe(MANIFEST.inputs[0]) == "x: float32 [-1, 4]"


@pytest.mark.parametrize("size", [64, BLAS_THREADED + 1, 4096 * 64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("bad", "finite"),
    [(None, True), (float("nan"), False), (float("inf"), False), (-float("inf"), False)],
)
def test_all_finite_small_by_blas_and_large_without_it(
    size: int, dtype: type, bad: float | None, finite: bool
) -> None:
    """One BLAS dot product up to BLAS_THREADED values (OpenBLAS would run a bigger one on
    every core, its threads then spinning beside a batch's parsing); the exact check past it."""
    value = np.random.default_rng(size).normal(size=size).astype(dtype)
    if bad is not None:
        value[size // 2] = bad
    assert all_finite(value) is finite
    assert all_finite(value.reshape(-1, 8) if size % 8 == 0 else value[None, :]) is finite
