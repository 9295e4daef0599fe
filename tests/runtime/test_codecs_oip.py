"""Open Inference Protocol v2 request and response bodies (functions/runtime/codecs/oip.py)."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest

from functions.runtime.codecs import oip, tensors
from functions.runtime.dtypes import BY_OIP
from functions.runtime.errors import BadRequest, InvalidInput
from functions.runtime.manifest import ModelFile, ModelManifest, TensorSpec

MANIFEST = ModelManifest(
    name="m",
    version="4",
    task="other",
    inputs=(TensorSpec("x", "float32", (-1, 2)), TensorSpec("tok", "string", (-1,))),
    outputs=(TensorSpec("y", "float32", (-1, 2)), TensorSpec("n", "int64", (-1,))),
    file=ModelFile(sha256="0" * 64, size=1, opset=17, producer="test"),
)


def binary_body(header: dict[str, Any], *blobs: bytes) -> tuple[bytes, int]:
    head = json.dumps(header).encode()
    return head + b"".join(blobs), len(head)


def fp32_input(name: str, values: list[float], binary: bool = True) -> dict[str, Any]:
    item: dict[str, Any] = {"name": name, "shape": [len(values) // 2, 2], "datatype": "FP32"}
    if binary:
        item["parameters"] = {"binary_data_size": 4 * len(values)}
    else:
        item["data"] = values
    return item


def test_binary_request_built_byte_by_byte() -> None:
    tok = struct.pack("<I", 2) + b"hi" + struct.pack("<I", 3) + b"you"
    header = {
        "id": "abc",
        "inputs": [
            fp32_input("x", [1, 2, 3, 4]),
            {
                "name": "tok",
                "shape": [2],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(tok)},
            },
        ],
        "outputs": [{"name": "y", "parameters": {"binary_data": True}}, {"name": "n"}],
    }
    body, length = binary_body(header, struct.pack("<4f", 1, 2, 3, 4), tok)
    request = oip.decode_request(body, oip.parse_header_length(str(length), len(body)))
    assert request.id == "abc"
    assert request.inputs["x"].tolist() == [[1, 2], [3, 4]]
    assert request.inputs["x"].dtype == np.float32
    assert request.inputs["tok"].tolist() == ["hi", "you"]
    assert request.outputs == ["y", "n"]
    assert request.binary_outputs == {"y"}


def test_repeated_headers_are_parsed_once_but_data_is_per_request() -> None:
    header = {"inputs": [fp32_input("x", [0, 0])]}
    first, length = binary_body(header, struct.pack("<2f", 1, 2))
    second, _ = binary_body(header, struct.pack("<2f", 5, 6))
    before = oip._binary_header.cache_info().hits
    assert oip.decode_request(first, length).inputs["x"].tolist() == [[1, 2]]
    assert oip.decode_request(second, length).inputs["x"].tolist() == [[5, 6]]
    assert oip._binary_header.cache_info().hits == before + 1


@pytest.mark.parametrize(
    ("datatype", "values"),
    [("FP32", [1.5, -2.0]), ("FP64", [1e300, 0.25]), ("INT64", [-(2**62), 7]), ("UINT8", [0, 255])],
)
def test_binary_numbers_read_as_from_bytes_reads_them(datatype: str, values: list[Any]) -> None:
    """Numbers of the size their shape takes skip `tensors.from_bytes`: the same array,
    aligned, little-endian whatever the host; a size that does not match is still its 400."""
    wire = BY_OIP[datatype].wire
    data = np.array(values, dtype=wire).tobytes()
    header = {
        "id": "q",  # an odd header length: the data lies off any boundary in the body
        "inputs": [
            {
                "name": "x",
                "shape": [1, 2],
                "datatype": datatype,
                "parameters": {"binary_data_size": len(data)},
            }
        ],
    }
    body, length = binary_body(header, data)
    array = oip.decode_request(body, length).inputs["x"]
    expected = tensors.from_bytes(data, BY_OIP[datatype], (1, 2), "x")
    assert array.dtype == expected.dtype and array.shape == (1, 2)
    assert array.tolist() == expected.tolist() == [values]
    assert array.ctypes.data % tensors.ALIGNMENT == 0
    header["inputs"][0]["parameters"]["binary_data_size"] = len(data) - 1
    short, length = binary_body(header, data[:-1])
    with pytest.raises(InvalidInput, match=f"has {len(data) - 1} bytes of data; shape"):
        oip.decode_request(short, length)


def test_large_headers_bypass_the_cache() -> None:
    header = {"id": "x" * oip.CACHED_HEADER_BYTES, "inputs": [fp32_input("x", [0, 0])]}
    body, length = binary_body(header, struct.pack("<2f", 3, 4))
    before = oip._binary_header.cache_info()
    assert oip.decode_request(body, length).inputs["x"].tolist() == [[3, 4]]
    assert oip._binary_header.cache_info() == before


def test_json_request() -> None:
    body = json.dumps({"inputs": [fp32_input("x", [1, 2], binary=False)]}).encode()
    request = oip.decode_request(body, None)
    assert request.inputs["x"].tolist() == [[1, 2]]
    assert (request.id, request.outputs, request.binary_outputs) == (None, None, set())


@pytest.mark.parametrize(
    ("value", "size", "expected"),
    # 0 is no header, as Triton reads it: the whole body is JSON (a JSON header is never empty)
    [(None, 10, None), ("0", 10, 0), ("00", 0, 0), ("10", 10, 10), (" 7 ", 10, 7)],
)
def test_parse_header_length(value: str | None, size: int, expected: int | None) -> None:
    assert oip.parse_header_length(value, size) == expected


def test_header_length_zero_reads_the_whole_body_as_json_and_says_so_when_it_is_not() -> None:
    body = json.dumps({"inputs": [{"name": "x", "datatype": "INT64", "shape": [1, 2],
                                   "data": [1, 2]}]}).encode()  # fmt: skip
    assert oip.decode_request(body, oip.parse_header_length("0", len(body))).inputs[
        "x"
    ].tolist() == [[1, 2]]
    head = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1],
                                   "parameters": {"binary_data_size": 4}}]}).encode()  # fmt: skip
    binary = head + b"\x00\x00\x80\xff"  # a float's bytes: not UTF-8
    with pytest.raises(BadRequest) as info:
        oip.decode_request(binary, oip.parse_header_length("0", len(binary)))
    assert info.value.message.startswith("request body is not UTF-8 text")
    assert "Inference-Header-Content-Length 0 means no JSON header" in info.value.message
    with pytest.raises(BadRequest) as info:  # without the header: the message as it was
        oip.decode_request(binary, None)
    assert "Inference-Header-Content-Length" not in info.value.message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "Inference-Header-Content-Length must be a non-negative integer"),
        ("1e3", "Inference-Header-Content-Length must be a non-negative integer"),
        ("", "Inference-Header-Content-Length must be a non-negative integer"),
        # Unicode digits pass str.isdigit but not int(): hypothesis found '²' answering 500.
        ("²", "Inference-Header-Content-Length must be a non-negative integer"),
        ("١٢", "Inference-Header-Content-Length must be a non-negative integer"),
        ("11", "Inference-Header-Content-Length is 11 but the body has only 10 bytes"),
    ],
)
def test_bad_header_length_is_400(value: str, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        oip.parse_header_length(value, 10)
    assert info.value.message == message


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"inputs": [fp32_input("x", [1, 2], binary=False)], "parameters": "binary"},
            "request parameters must be a JSON object",
        ),
        ({"inputs": ["x"]}, "inputs[0] must be a JSON object"),
        (
            {"inputs": [fp32_input("x", [1, 2], binary=False)], "outputs": ["y"]},
            "outputs[0] must be a JSON object",
        ),
        (
            {"inputs": [fp32_input("x", [1, 2], binary=False)], "outputs": [{}]},
            "outputs[0] needs a 'name'",
        ),
        (
            {"inputs": [{**fp32_input("x", [1, 2]), "parameters": {"binary_data_size": True}}]},
            "input 'x' binary_data_size must be a non-negative integer",
        ),
        (
            {"inputs": [{**fp32_input("x", [1, 2]), "parameters": {"binary_data_size": -4}}]},
            "input 'x' binary_data_size must be a non-negative integer",
        ),
    ],
)
def test_malformed_header_is_400(doc: dict[str, Any], message: str) -> None:
    body, length = binary_body(doc)
    with pytest.raises(BadRequest) as info:
        oip.decode_request(body, length)
    assert info.value.message == message


def test_per_output_flag_overrides_the_request_default() -> None:
    doc = {
        "inputs": [fp32_input("x", [1, 2], binary=False)],
        "parameters": {"binary_data_output": True},
        "outputs": [{"name": "y", "parameters": {"binary_data": False}}, {"name": "n"}],
    }
    request = oip.decode_request(json.dumps(doc).encode(), None)
    assert request.binary_default is True
    assert request.binary_outputs == {"n"}


def test_encode_response_json() -> None:
    request = oip.InferRequest(inputs={}, id="r1")
    outputs: dict[str, np.ndarray] = {
        "y": np.array([[0.5, 1.5]], np.float32),
        "n": np.array([3], np.int64),
    }
    body, length = oip.encode_response(MANIFEST, request, outputs)
    assert length is None
    assert json.loads(body) == {
        "model_name": "m",
        "model_version": "4",
        "id": "r1",
        "outputs": [
            {"name": "y", "datatype": "FP32", "shape": [1, 2], "data": [0.5, 1.5]},
            {"name": "n", "datatype": "INT64", "shape": [1], "data": [3]},
        ],
    }


def test_encode_response_binary_follows_the_header_in_output_order() -> None:
    request = oip.InferRequest(inputs={}, outputs=["n", "y"], binary_outputs={"n", "y"})
    outputs: dict[str, np.ndarray] = {
        "n": np.array([7, 8], np.int64),
        "y": np.array([[1, 2]], np.float32),
    }
    body, length = oip.encode_response(MANIFEST, request, outputs)
    assert length is not None
    header = json.loads(body[:length])
    assert [o["parameters"]["binary_data_size"] for o in header["outputs"]] == [16, 8]
    assert body[length:] == struct.pack("<2q", 7, 8) + struct.pack("<2f", 1, 2)


def test_encode_response_bytes_output_in_json_and_binary() -> None:
    text = {"n": np.array(["a", "bé"], dtype=object)}
    body, _ = oip.encode_response(MANIFEST, oip.InferRequest(inputs={}), text)
    assert json.loads(body)["outputs"][0] == {
        "name": "n",
        "datatype": "BYTES",
        "shape": [2],
        "data": ["a", "bé"],
    }
    body, length = oip.encode_response(
        MANIFEST, oip.InferRequest(inputs={}, binary_default=True), text
    )
    assert length is not None
    assert body[length:] == struct.pack("<I", 1) + b"a" + struct.pack("<I", 3) + "bé".encode()


def test_model_metadata() -> None:
    assert oip.model_metadata(MANIFEST, ["3", "4"]) == {
        "name": "m",
        "versions": ["3", "4"],
        "platform": "onnxruntime_onnx",
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [-1, 2]},
            {"name": "tok", "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [
            {"name": "y", "datatype": "FP32", "shape": [-1, 2]},
            {"name": "n", "datatype": "INT64", "shape": [-1]},
        ],
        "parameters": {"version": "4", "task": "other", "labels": [], "features": []},
    }
