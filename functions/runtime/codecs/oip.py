"""Open Inference Protocol v2 (KServe / Triton) request and response bodies, JSON and binary.

Binary tensor extension: the body is a JSON header of `Inference-Header-Content-Length` bytes
followed by each binary tensor's bytes in order; a tensor says it is binary with
`parameters.binary_data_size`. Outputs are binary when the request asks, per output
(`parameters.binary_data`) or for all (`parameters.binary_data_output`). An output may ask for
its top classes instead of its scores (`parameters.classification`: oip_classification).
The JSON header is parsed and checked in oip_header.py; here, the tensors are sliced and the
response encoded.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from functions.runtime.codecs import json_bools, oip_classification, oip_names, tensors
from functions.runtime.codecs.float_text import written
from functions.runtime.codecs.oip_header import Header, parse_header
from functions.runtime.dtypes import BY_NAME, BY_NUMPY
from functions.runtime.errors import BadRequest, InvalidInput
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.text_input import carries_tokenizer, text_input

BINARY_HEADER = "inference-header-content-length"
CACHED_HEADER_BYTES = 2048


@dataclass
class InferRequest:
    inputs: dict[str, np.ndarray]
    id: str | None = None
    outputs: list[str] | None = None  # None: every output
    binary_outputs: AbstractSet[str] = frozenset()
    binary_default: bool = False
    classifications: oip_classification.Requested = ()  # (output, class count) pairs
    refused_counts: oip_classification.Refused = ()  # (output, why its count is none) pairs


def parse_header_length(value: str | None, body_size: int) -> int | None:
    """The JSON header size from `Inference-Header-Content-Length`, checked against the body.

    None when there is no header; 0, which Triton's server reads as no header (a JSON header is
    never empty), also means the whole body is JSON: `decode_request` reads it so."""
    if value is None:
        return None
    # A client sends the same header with every request of one shape: read once, if short.
    significant, length = _header_length(value) if len(value) <= 32 else _read_length(value)
    if length is None or length > body_size:
        raise BadRequest(
            f"Inference-Header-Content-Length is {significant[:40]}"
            f"{'...' if len(significant) > 40 else ''} but the body has only {body_size} bytes"
        )
    return length


def _read_length(value: str) -> tuple[str, int | None]:
    """(its significant digits, its value; None past 20 digits, more than any body)."""
    digits = value.strip()
    if not (digits.isascii() and digits.isdigit()):  # '²' is a digit to isdigit
        if "," in digits:  # API Gateway joins a repeated header's values with commas
            raise BadRequest(
                f"Inference-Header-Content-Length was sent more than once ({digits[:40]}): "
                "send it once, with the JSON header's length in bytes"
            )
        raise BadRequest("Inference-Header-Content-Length must be a non-negative integer")
    # Said so without int(), which raises ValueError past 4,300 digits (a 500 from one header).
    significant = digits.lstrip("0") or "0"
    return significant, int(significant) if len(significant) <= 20 else None


_header_length = functools.lru_cache(maxsize=256)(_read_length)


def decode_request(
    body: bytes, header_length: int | None, model: ModelManifest | None = None
) -> InferRequest:
    """Parse an infer request; binary tensors are sliced from the body after the JSON header.

    `header_length` None or 0: the whole body is the JSON request. `model`: the manifest of the
    model that answers, which bounds how many inputs and outputs it may name (oip_names)."""
    try:
        header, head, offset = _read_header(body, header_length, oip_names.limits(model))
    except oip_names.TooMany as error:
        assert model is not None  # only a model's limits are exceeded
        raise InvalidInput(error.explained(model)) from None
    end = len(body)  # binary data: body[offset:end], sliced from the body itself
    inputs: dict[str, np.ndarray] = {}
    bools: bool | None = None  # a true among numbers is looked for only if the JSON has one
    for tensor in header.tensors:
        if tensor.size is None:
            if bools is None:
                bools = json_bools.may_hold_bools(head)
            inputs[tensor.name] = tensors.from_json_data(
                tensor.data, tensor.dtype, tensor.shape, tensor.name, bools=bools, body=head
            )
            continue
        stop = offset + tensor.size
        if stop > end:
            raise BadRequest(
                f"input '{tensor.name}' claims {tensor.size} bytes of binary data; "
                f"only {end - offset} remain"
            )
        if tensor.size == tensor.plain:  # a bytes copy: aligned, as tensors.from_bytes says why
            inputs[tensor.name] = np.frombuffer(body[offset:stop], tensor.wire).reshape(
                tensor.shape
            )
        else:  # a view: a big tensor is not copied unless it must be
            chunk = memoryview(body)[offset:stop]
            inputs[tensor.name] = tensors.from_bytes(chunk, tensor.dtype, tensor.shape, tensor.name)
        offset = stop
    if offset != end:
        raise BadRequest(f"{end - offset} bytes of binary data follow the last tensor")
    return InferRequest(  # the header's frozen set as it is: nothing changes it
        inputs,
        header.id,
        list(header.outputs) if header.outputs is not None else None,
        header.binary_outputs,
        header.binary_default,
        header.classifications,
        header.refused_counts,
    )


def _read_header(
    body: bytes, header_length: int | None, limits: oip_names.Limits | None
) -> tuple[Header, bytes, int]:
    """(the JSON header parsed, its bytes, where the binary data after it starts)."""
    if not header_length:
        try:
            header = parse_header(body, binary=False, limits=limits)
        except BadRequest as error:
            if header_length is None or not error.message.startswith("request body is not"):
                raise
            raise BadRequest(  # a client that sent its binary tensors with a header length of 0
                f"{error.message} (Inference-Header-Content-Length 0 means no JSON header: the "
                "whole body is read as JSON; with binary tensors, send the JSON header's length)"
            ) from None
        return header, body, len(body)
    head = body[:header_length]
    # Clients repeat the same JSON header for every request of one shape: parse it once.
    # Only small headers are cached, so the cache stays small whatever callers send.
    header = (
        _binary_header(head, limits)
        if len(head) <= CACHED_HEADER_BYTES
        else parse_header(head, binary=True, limits=limits)
    )
    return header, head, header_length


@functools.lru_cache(maxsize=256)
def _binary_header(head: bytes, limits: oip_names.Limits | None) -> Header:
    return parse_header(head, binary=True, limits=limits)


def encode_response(
    manifest: ModelManifest, request: InferRequest, outputs: Mapping[str, np.ndarray]
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header length when binary outputs follow it."""
    if request.classifications:
        outputs = oip_classification.classify(manifest, outputs, request.classifications)
    items = []
    blobs = []
    for name, array in outputs.items():
        dtype = _oip_name(array)
        item: dict[str, Any] = {"name": name, "datatype": dtype, "shape": list(array.shape)}
        if name in request.binary_outputs or (request.outputs is None and request.binary_default):
            data = tensors.to_bytes(array)
            item["parameters"] = {"binary_data_size": len(data)}
            blobs.append(data)
        else:
            item["data"] = (
                tensors.to_json_data(array) if array.dtype == object else written(array).reshape(-1)
            )
        items.append(item)
    doc: dict[str, Any] = {
        "model_name": manifest.name,
        "model_version": manifest.version,
        "outputs": items,
    }
    if request.id is not None:
        doc["id"] = request.id
    head = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)


def _oip_name(array: np.ndarray) -> str:
    entry = BY_NUMPY.get(array.dtype)
    if entry is not None:
        return entry.oip
    return "BYTES" if array.dtype.kind in "OUS" else "FP32"


def tensor_metadata(spec: TensorSpec) -> dict[str, Any]:
    """`{"name", "datatype", "shape"}` as OIP model metadata lists tensors."""
    return {"name": spec.name, "datatype": BY_NAME[spec.dtype].oip, "shape": list(spec.shape)}


def model_metadata(manifest: ModelManifest, versions: list[str]) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "version": manifest.version,
        "task": manifest.task,
        "labels": list(manifest.labels),
        "features": list(manifest.features),
    }
    text = text_input(manifest) if carries_tokenizer(manifest) else None
    if text is not None:  # a BYTES tensor of one text per row may replace the token ids
        parameters["text"] = {
            "input": text.input,
            "datatype": "BYTES",
            "max_length": text.max_length,
        }
        kind = manifest.preprocessing.get("tokenizer")
        if kind:  # clients that tokenize themselves fetch it here
            path = f"/models/{manifest.name}/versions/{manifest.version}/tokenizer"
            parameters["text"]["tokenizer"] = {"kind": kind, "path": path}
    return {
        "name": manifest.name,
        "versions": versions,
        "platform": "onnxruntime_onnx",
        "inputs": [tensor_metadata(spec) for spec in manifest.inputs],
        "outputs": [tensor_metadata(spec) for spec in manifest.outputs],
        # What a caller needs to build a request and read the answer; OIP clients ignore it.
        "parameters": parameters,
    }
