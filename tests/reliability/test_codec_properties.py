"""Property-based tests of the codecs: every datatype and shape round-trips; no input crashes.

Hypothesis generates the tensors and the garbage. "Never crashes" means: the decoder returns,
or raises one of the serving core's own errors with a 4xx status (what the adapters turn into
a `{"error": ...}` answer); never another exception, never a 5xx.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from functions.predict.service import PredictService
from functions.runtime.codecs import oip, simple, tensors
from functions.runtime.dtypes import TABLE, DType
from functions.runtime.errors import AiaasError
from functions.runtime.manifest import ModelFile, ModelManifest, TensorSpec
from functions.runtime.validation import validate_inputs
from tests.functions.test_predict_events import MODEL, digits_service, http_event, publish_digits

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)
NUMERIC = [d for d in TABLE if d.name != "string"]
MANIFEST = ModelManifest(
    name="m",
    version="1",
    task="other",
    inputs=(TensorSpec("x", "float32", (-1, 3)), TensorSpec("tok", "string", (-1,))),
    outputs=(TensorSpec("y", "float32", (-1, 3)),),
    file=ModelFile(sha256="0" * 64, size=1, opset=17, producer="test"),
)


def arrays_of(dtype: DType, *, finite: bool = False) -> st.SearchStrategy[np.ndarray]:
    if dtype.name == "string":
        return SHAPES.flatmap(
            lambda shape: st.lists(
                st.text(max_size=8), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))
            ).map(lambda items: np.array(items, dtype=object).reshape(shape))
        )
    elements = (
        st.floats(width=8 * dtype.numpy.itemsize, allow_nan=False, allow_infinity=False)
        if finite and dtype.numpy.kind == "f"
        else None
    )
    return hnp.arrays(dtype.numpy, SHAPES, elements=elements)


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    if want.dtype == object:
        assert got.tolist() == want.tolist()
    else:
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)  # NaN equals NaN here


def assert_client_error(exc: AiaasError) -> None:
    assert exc.status < HTTPStatus.INTERNAL_SERVER_ERROR, exc.message
    assert exc.public_message


@pytest.mark.parametrize("dtype", TABLE, ids=[d.oip for d in TABLE])
def test_binary_round_trip_of_every_datatype_and_shape(dtype: DType) -> None:
    @FAST
    @given(arrays_of(dtype))
    def check(array: np.ndarray) -> None:
        raw = tensors.to_bytes(array)
        assert_same(tensors.from_bytes(raw, dtype, array.shape, "x"), array)

    check()


@pytest.mark.parametrize("dtype", TABLE, ids=[d.oip for d in TABLE])
def test_json_round_trip_of_every_datatype_and_shape(dtype: DType) -> None:
    @FAST
    @given(arrays_of(dtype, finite=True))
    def check(array: np.ndarray) -> None:
        wire = orjson.loads(orjson.dumps(list(tensors.to_json_data(array))))
        assert_same(tensors.from_json_data(wire, dtype, array.shape, "x"), array)

    check()


@FAST
@given(
    st.lists(
        st.tuples(st.sampled_from(NUMERIC), st.booleans()).flatmap(
            lambda pair: st.tuples(st.just(pair[0]), st.just(pair[1]), arrays_of(pair[0]))
        ),
        min_size=1,
        max_size=4,
    )
)
def test_infer_request_round_trip_mixing_binary_and_json_tensors(
    items: list[tuple[DType, bool, np.ndarray]],
) -> None:
    """A request as a client builds it (some tensors binary, some JSON) decodes to its tensors."""
    header: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for index, (dtype, as_binary, array) in enumerate(items):
        item: dict[str, Any] = {
            "name": f"t{index}",
            "datatype": dtype.oip,
            "shape": list(array.shape),
        }
        if as_binary or (dtype.numpy.kind == "f" and not np.isfinite(array).all()):
            blobs.append(tensors.to_bytes(array))
            item["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            item["data"] = list(tensors.to_json_data(array))
        header.append(item)
    head = orjson.dumps({"inputs": header})
    decoded = oip.decode_request(head + b"".join(blobs), len(head) if blobs else None)
    for index, (_, _, array) in enumerate(items):
        assert_same(decoded.inputs[f"t{index}"], array)


@FAST
@given(st.binary(max_size=512), st.one_of(st.none(), st.integers(0, 600)))
def test_arbitrary_bytes_never_crash_the_infer_decoder(
    body: bytes, header_length: int | None
) -> None:
    try:
        length = oip.parse_header_length(
            None if header_length is None else str(header_length), len(body)
        )
        oip.decode_request(body, length)
    except AiaasError as exc:
        assert_client_error(exc)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=30,
)
TENSOR_HEADERS = st.fixed_dictionaries(
    {"name": st.sampled_from(["x", "tok", ""]) | st.integers()},
    optional={
        "datatype": st.sampled_from([d.oip for d in TABLE] + ["FLOAT", 3]),
        "shape": st.lists(st.integers(-2, 70), max_size=4) | JSON_VALUES,
        "data": JSON_VALUES,
        "parameters": st.dictionaries(
            st.sampled_from(["binary_data_size", "binary_data"]), JSON_VALUES
        ),
    },
)


@FAST
@given(
    st.fixed_dictionaries(
        {"inputs": st.lists(TENSOR_HEADERS, max_size=3) | JSON_VALUES},
        optional={"id": JSON_VALUES, "outputs": JSON_VALUES, "parameters": JSON_VALUES},
    )
)
def test_arbitrary_json_infer_documents_are_decoded_or_refused_with_a_4xx(
    doc: dict[str, Any],
) -> None:
    try:
        request = oip.decode_request(json.dumps(doc).encode(), None)
        validate_inputs(MANIFEST, request.inputs, max_batch_size=64, typed=True)
    except AiaasError as exc:
        assert_client_error(exc)


@FAST
@given(
    JSON_VALUES
    | st.fixed_dictionaries({"inputs": JSON_VALUES})
    | st.fixed_dictionaries({"instances": JSON_VALUES})
)
def test_arbitrary_simple_bodies_are_decoded_or_refused_with_a_4xx(body: Any) -> None:
    try:
        inputs = simple.decode(body, MANIFEST)
        validate_inputs(MANIFEST, inputs, max_batch_size=64, typed=False)
    except AiaasError as exc:
        assert_client_error(exc)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> PredictService:
    root: Path = tmp_path_factory.mktemp("fuzz")
    publish_digits(root)
    return digits_service(root)


ROUTES = [
    f"/models/{MODEL}/predict",
    f"/v2/models/{MODEL}/infer",
    f"/v2/models/{MODEL}/versions/1/infer",
]


def test_arbitrary_events_never_get_a_5xx_from_the_predict_function(
    service: PredictService,
) -> None:
    @FAST
    @given(
        st.sampled_from(ROUTES),
        st.binary(max_size=400) | JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        st.one_of(st.none(), st.integers(-1, 500).map(str), st.text(max_size=4)),
        st.booleans(),
    )
    def check(path: str, body: bytes, header_length: str | None, b64: bool) -> None:
        headers = (
            {} if header_length is None else {"inference-header-content-length": header_length}
        )
        text = body if b64 else body.decode("utf-8", "replace")
        response = service.handle(http_event("POST", path, text, headers=headers, b64=b64))
        assert response["statusCode"] < 500, response["body"]
        assert list(orjson.loads(response["body"])) in (
            ["error"],
            ["model", "version", "outputs", "predictions"],
            ["model_name", "model_version", "outputs"],
        )

    check()
