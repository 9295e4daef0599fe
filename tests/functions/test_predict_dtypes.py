"""Every datatype onnxruntime takes, through `/v2/models/{name}/infer`, in JSON and binary.

One identity model per element type (built with onnx.helper), values at each type's limits,
so a lossy cast anywhere between the wire and the session shows up as a wrong value.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_events import body_of, http_event

# OIP datatype -> (ONNX element type, numpy dtype, two rows of three values)
CASES: dict[str, tuple[int, str, list[list[Any]]]] = {
    "BOOL": (TensorProto.BOOL, "bool", [[True, False, True], [False, False, True]]),
    "INT8": (TensorProto.INT8, "int8", [[-128, 0, 127], [1, -1, 2]]),
    "INT16": (TensorProto.INT16, "int16", [[-32768, 0, 32767], [1, -1, 2]]),
    "INT32": (TensorProto.INT32, "int32", [[-(2**31), 0, 2**31 - 1], [1, -1, 2]]),
    "INT64": (TensorProto.INT64, "int64", [[-(2**63), 0, 2**63 - 1], [1, -1, 2]]),
    "UINT8": (TensorProto.UINT8, "uint8", [[0, 1, 255], [2, 3, 4]]),
    "UINT16": (TensorProto.UINT16, "uint16", [[0, 1, 65535], [2, 3, 4]]),
    "UINT32": (TensorProto.UINT32, "uint32", [[0, 1, 2**32 - 1], [2, 3, 4]]),
    "UINT64": (TensorProto.UINT64, "uint64", [[0, 1, 2**64 - 1], [2, 3, 4]]),
    "FP16": (TensorProto.FLOAT16, "float16", [[-1.5, 0.000122, 65504.0], [0.1, 2.0, -3.0]]),
    "FP32": (TensorProto.FLOAT, "float32", [[-1.5, 1.1754944e-38, 3.4028235e38], [0.1, 2.0, -3.0]]),
    "FP64": (
        TensorProto.DOUBLE,
        "float64",
        [[-1.5, 2.2e-308, 1.7976931348623157e308], [0.1, 2.0, -3.0]],
    ),
    "BYTES": (TensorProto.STRING, "object", [["héllo", "", "数字 7"], ["a b", "x" * 40, "😀"]]),
}


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PredictService]:
    root = tmp_path_factory.mktemp("dtypes")
    store = LocalStore(root / "store")
    registry = Registry(store)
    pool = ModelPool(registry, ArtifactCache(store, root / "cache"), max_versions=len(CASES))
    found = {}
    for oip, (elem, _, _) in CASES.items():
        name = f"identity-{oip.lower()}"
        path = onnx_factory.identity(root / f"{name}.onnx", elem=elem)
        registry.publish(onnx_factory.manifest_for(path, name, "1"), path)
        found[oip] = service_from_env({"AIAAS_MODEL": name}, pool)
    return found


def expected(oip: str) -> np.ndarray:
    _, dtype, rows = CASES[oip]
    return np.array(rows, dtype=dtype)


def tensor_bytes(array: np.ndarray) -> bytes:
    """The binary extension's encoding, written out independently of the codec under test."""
    if array.dtype == object:
        out = b""
        for item in array.ravel():
            data = item.encode("utf-8")
            out += struct.pack("<I", len(data)) + data
        return out
    return array.astype(array.dtype.newbyteorder("<")).tobytes()


def from_tensor_bytes(raw: bytes, oip: str, shape: list[int]) -> np.ndarray:
    if oip == "BYTES":
        items, offset = [], 0
        while offset < len(raw):
            (length,) = struct.unpack_from("<I", raw, offset)
            items.append(raw[offset + 4 : offset + 4 + length].decode("utf-8"))
            offset += 4 + length
        return np.array(items, dtype=object).reshape(shape)
    return np.frombuffer(raw, dtype=np.dtype(CASES[oip][1]).newbyteorder("<")).reshape(shape)


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    if want.dtype == object:
        assert got.tolist() == want.tolist()
    else:
        np.testing.assert_array_equal(got.astype(want.dtype), want, strict=False)


@pytest.mark.parametrize("oip", list(CASES))
def test_json_round_trip(services: dict[str, PredictService], oip: str) -> None:
    want = expected(oip)
    doc = {
        "inputs": [{"name": "x", "shape": [2, 3], "datatype": oip, "data": want.ravel().tolist()}]
    }
    name = f"identity-{oip.lower()}"
    response = services[oip].handle(http_event("POST", f"/v2/models/{name}/infer", json.dumps(doc)))
    assert response["statusCode"] == 200, response["body"]
    (out,) = body_of(response)["outputs"]
    assert (out["name"], out["datatype"], out["shape"]) == ("y", oip, [2, 3])
    got = np.array(out["data"], dtype=object if oip == "BYTES" else CASES[oip][1])
    assert_same(got.reshape(2, 3), want)


@pytest.mark.parametrize("oip", list(CASES))
def test_binary_round_trip(services: dict[str, PredictService], oip: str) -> None:
    want = expected(oip)
    payload = tensor_bytes(want)
    header = {
        "inputs": [
            {
                "name": "x",
                "shape": [2, 3],
                "datatype": oip,
                "parameters": {"binary_data_size": len(payload)},
            }
        ],
        "outputs": [{"name": "y", "parameters": {"binary_data": True}}],
    }
    head = json.dumps(header).encode()
    name = f"identity-{oip.lower()}"
    event = http_event(
        "POST",
        f"/v2/models/{name}/infer",
        head + payload,
        b64=True,
        headers={
            "content-type": "application/octet-stream",
            "inference-header-content-length": str(len(head)),
        },
    )
    response = services[oip].handle(event)
    assert response["statusCode"] == 200, response["body"]
    raw = base64.b64decode(response["body"])
    length = int(response["headers"]["inference-header-content-length"])
    (out,) = json.loads(raw[:length])["outputs"]
    assert (out["datatype"], out["shape"]) == (oip, [2, 3])
    assert out["parameters"]["binary_data_size"] == len(raw) - length
    assert_same(from_tensor_bytes(raw[length:], oip, [2, 3]), want)


def test_model_metadata_names_the_oip_datatype(services: dict[str, PredictService]) -> None:
    for oip, service in services.items():
        name = f"identity-{oip.lower()}"
        doc = body_of(service.handle(http_event("GET", f"/v2/models/{name}")))
        assert doc["inputs"] == [{"name": "x", "datatype": oip, "shape": [-1, 3]}]
        assert doc["outputs"] == [{"name": "y", "datatype": oip, "shape": [-1, 3]}]


@pytest.mark.parametrize(
    ("oip", "sent", "data", "message"),
    [
        (
            "INT16",
            "INT32",
            [1, 2, 3],
            "input 'x' expects INT16 (int16); got INT32 (int32), which does not convert safely: send INT16 (numpy .astype('int16'))",
        ),
        (
            "FP16",
            "FP32",
            [1.0, 2.0, 3.0],
            "input 'x' expects FP16 (float16); got FP32 (float32), which does not convert safely: send FP16 (numpy .astype('float16'))",
        ),
        (
            "BOOL",
            "INT8",
            [1, 0, 1],
            "input 'x' expects BOOL (bool); got INT8 (int8), which does not convert safely",
        ),
        (
            "BYTES",
            "FP32",
            [1.0, 2.0, 3.0],
            "input 'x' expects BYTES (string); got FP32 (float32), which does not convert safely",
        ),
        (  # the range said, as the simple API says it ("values are outside [0, 255]")
            "UINT8",
            "UINT8",
            [1, 2, 256],
            "tensor 'x' has values out of range for UINT8: [0, 255]",
        ),
        (
            "UINT64",
            "UINT64",
            [-1, 0, 2**64 - 1],
            "tensor 'x' has values out of range for UINT64: [0, 18446744073709551615]",
        ),
        ("FP16", "FP16", [1, 2, 70000], "tensor 'x' has values out of range for FP16: ±65504"),
        ("INT32", "INT32", [1.5, 2, 3], "tensor 'x' is INT32: data must be integers"),
        ("BOOL", "BOOL", [1, 0, 1], "tensor 'x' is BOOL: send true/false"),
        ("BYTES", "BYTES", ["a", 2, "c"], "tensor 'x' is BYTES: send strings"),
        (  # numpy casts int64 -> float64 "safely", and 2^53 + 1 was answered as 2^53 (a 200)
            "FP64",
            "INT64",
            [1, 2**53, 2**53 + 1],
            "input 'x' is FP64 (float64); INT64 (int64) value 9007199254740993 at index [0, 2] has no exact "
            "float64 value (integers past 2^53 round): send float64 values",
        ),
        (
            "FP64",
            "UINT64",
            [2**64 - 1, 0, 1],
            "input 'x' is FP64 (float64); UINT64 (uint64) value 18446744073709551615 at index [0, 0] has no "
            "exact float64 value (integers past 2^53 round): send float64 values",
        ),
    ],
    ids=[
        "narrower-int",
        "narrower-float",
        "int-as-bool",
        "number-as-text",
        "range",
        "uint64-range",
        "fp16-range",
        "fraction",
        "bool",
        "bytes",
        "int64-past-2^53",
        "uint64-past-2^53",
    ],
)
def test_dtype_mismatch_is_422(
    services: dict[str, PredictService], oip: str, sent: str, data: list[Any], message: str
) -> None:
    doc = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": sent, "data": data}]}
    name = f"identity-{oip.lower()}"
    response = services[oip].handle(http_event("POST", f"/v2/models/{name}/infer", json.dumps(doc)))
    assert (response["statusCode"], body_of(response)) == (422, {"error": message})


def test_safe_widening_is_accepted(services: dict[str, PredictService]) -> None:
    """An INT8 tensor fits an INT64 input exactly; Triton clients often send the narrower type.
    So does an INT64 one an FP64 input while every value is within 2^53."""
    doc = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "INT8", "data": [-128, 0, 127]}]}
    response = services["INT64"].handle(
        http_event("POST", "/v2/models/identity-int64/infer", json.dumps(doc))
    )
    assert response["statusCode"] == 200
    assert body_of(response)["outputs"][0]["data"] == [-128, 0, 127]
    data = [-(2**53), 0, 2**53]
    doc = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "INT64", "data": data}]}
    response = services["FP64"].handle(
        http_event("POST", "/v2/models/identity-fp64/infer", json.dumps(doc))
    )
    assert response["statusCode"] == 200
    assert body_of(response)["outputs"][0]["data"] == data


def test_bytes_in_binary_must_be_utf8_and_complete(services: dict[str, PredictService]) -> None:
    cases = {
        struct.pack("<I", 5) + b"ab": "tensor 'x' BYTES element is longer than the data left",
        b"\x01\x00": "tensor 'x' BYTES data is truncated (length prefix)",
        struct.pack("<I", 2) + b"\xff\xfe": (
            "tensor 'x' BYTES element 0 is not UTF-8 text (byte 0xff at offset 0)"
        ),
    }
    for payload, message in cases.items():
        header = {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1, 1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(payload)},
                }
            ]
        }
        head = json.dumps(header).encode()
        event = http_event(
            "POST",
            "/v2/models/identity-bytes/infer",
            head + payload,
            b64=True,
            headers={"inference-header-content-length": str(len(head))},
        )
        response = services["BYTES"].handle(event)
        assert (response["statusCode"], body_of(response)) == (422, {"error": message})


@pytest.mark.parametrize("oip", ["INT64", "INT32", "UINT8"])
def test_integral_floats_are_integers_and_fractions_are_named(
    services: dict[str, PredictService], oip: str
) -> None:
    name = f"identity-{oip.lower()}"
    simple = services[oip].handle(
        http_event("POST", f"/models/{name}/predict", json.dumps({"inputs": [[6.0, 0.0, 2]]}))
    )
    assert (simple["statusCode"], body_of(simple)["outputs"]) == (200, {"y": [[6, 0, 2]]})
    doc = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": oip, "data": [6.0, 0.0, 2]}]}
    infer = services[oip].handle(http_event("POST", f"/v2/models/{name}/infer", json.dumps(doc)))
    assert (infer["statusCode"], body_of(infer)["outputs"][0]["data"]) == (200, [6, 0, 2])
    bad = services[oip].handle(
        http_event("POST", f"/models/{name}/predict", json.dumps({"inputs": [[6.5, 0, 2]]}))
    )
    assert (bad["statusCode"], body_of(bad)) == (
        422,
        {"error": f"input 'x' expects {oip.lower()}; 6.5 is not a whole number"},
    )


def test_string_model_on_the_simple_route(services: dict[str, PredictService]) -> None:
    body = json.dumps({"inputs": [["a", "b", "c"]]})
    response = services["BYTES"].handle(http_event("POST", "/models/identity-bytes/predict", body))
    assert response["statusCode"] == 200, response["body"]
    assert body_of(response)["outputs"] == {"y": [["a", "b", "c"]]}


@pytest.mark.parametrize(
    ("row", "said"),
    [  # it said "expects bool; got int64, which does not convert safely", "must be a number
        # (bool)" and "send a number": a bool input takes JSON's true/false, and no number
        ([1, 0, 1], "input 'x' expects bool; got int64, which does not convert safely: send "),
        (["true", False, True], "input 'x' value [0, 0] must be true or false (bool); got 'true'"),
        ([None, False, True], "input 'x' expects true or false; got mixed or null values"),
    ],
)
def test_a_bool_input_on_the_simple_route_asks_for_true_or_false(
    services: dict[str, PredictService], row: list[Any], said: str
) -> None:
    body = json.dumps({"inputs": [row]})
    response = services["BOOL"].handle(http_event("POST", "/models/identity-bool/predict", body))
    error = body_of(response)["error"]
    assert response["statusCode"] == 422 and error.startswith(said), error
    assert "true or false" in error and "number" not in error.removeprefix(said)


def test_bool_in_binary_is_bytes_0_or_1(services: dict[str, PredictService]) -> None:
    # The binary extension: true is one byte 1, false one byte 0. A 2 reached onnxruntime (a C++
    # bool of 2 is undefined) and came back as byte 2, which numpy calls True but not == True.
    header = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "BOOL"}]}
    header["inputs"][0]["parameters"] = {"binary_data_size": 3}
    head = json.dumps(header).encode()
    event = http_event(
        "POST",
        "/v2/models/identity-bool/infer",
        head + bytes([1, 0, 2]),
        b64=True,
        headers={"inference-header-content-length": str(len(head))},
    )
    response = services["BOOL"].handle(event)
    assert (response["statusCode"], body_of(response)) == (
        422,
        {"error": "tensor 'x' is BOOL: each byte of its binary data must be 0 (false) or 1 (true)"},
    )


@pytest.mark.parametrize(
    ("oip", "data"),
    [
        ("INT64", [2**53 + 1, 1.0, 2]),  # was 2**53: numpy read the mix as float64, rounding
        ("INT64", [2**63 - 1, -(2**63), 6.0]),  # was a 422 "out of range"
        ("UINT64", [2**64 - 1, 1.0, 0]),  # was a 422 "out of range"
    ],
)
def test_integers_beside_whole_floats_stay_exact(
    services: dict[str, PredictService], oip: str, data: list[Any]
) -> None:
    doc = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": oip, "data": data}]}
    name = f"identity-{oip.lower()}"
    response = services[oip].handle(http_event("POST", f"/v2/models/{name}/infer", json.dumps(doc)))
    assert response["statusCode"] == 200, response["body"]
    assert body_of(response)["outputs"][0]["data"] == [int(v) for v in data]
