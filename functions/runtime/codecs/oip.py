"""Open Inference Protocol v2 (KServe / Triton) request and response bodies, JSON and binary.

Binary tensor extension: the body is a JSON header of `Inference-Header-Content-Length` bytes
followed by each binary tensor's bytes in order; a tensor says it is binary with
`parameters.binary_data_size`. Outputs are binary when the request asks, per output
(`parameters.binary_data`) or for all (`parameters.binary_data_output`). An output may ask for
its top classes instead of its scores (`parameters.classification`: oip_classification).
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
from functions.runtime.codecs.json_errors import not_json
from functions.runtime.codecs.wide_integers import as_typed
from functions.runtime.dtypes import BY_NAME, BY_NUMPY, DType
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


def _object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object")
    return value


def _parameters(item: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    parameters = item.get("parameters")  # absent or null: none; [] is no object either
    return {} if parameters is None else _object(parameters, f"{what} parameters")


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


@dataclass(frozen=True)
class _TensorHeader:
    name: str
    dtype: DType
    shape: tuple[int, ...]
    size: int | None  # binary_data_size, or None when the values are in `data`
    data: Any = None
    # Binary numbers: the size their shape takes (tensors.plain_bytes) and their wire type.
    # A size that matches is read without tensors.from_bytes (~0.5 us a tensor).
    plain: int | None = None
    wire: np.dtype[np.generic] | None = None


@dataclass(frozen=True)
class _Header:
    tensors: tuple[_TensorHeader, ...]
    id: str | None
    outputs: tuple[str, ...] | None
    binary_outputs: frozenset[str]
    binary_default: bool
    classifications: oip_classification.Requested
    refused_counts: oip_classification.Refused


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
) -> tuple[_Header, bytes, int]:
    """(the JSON header parsed, its bytes, where the binary data after it starts)."""
    if not header_length:
        try:
            header = _parse_header(body, binary=False, limits=limits)
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
        else _parse_header(head, binary=True, limits=limits)
    )
    return header, head, header_length


@functools.lru_cache(maxsize=256)
def _binary_header(head: bytes, limits: oip_names.Limits | None) -> _Header:
    return _parse_header(head, binary=True, limits=limits)


def _parse_header(head: bytes, *, binary: bool, limits: oip_names.Limits | None) -> _Header:
    try:
        doc = _object(orjson.loads(head), "the request body")
    except orjson.JSONDecodeError as exc:
        error = not_json(exc, head)
        if binary:  # the body may be sound JSON cut at the wrong byte: say where it was cut
            error = BadRequest(
                f"{error.message} (the JSON header is the body's first {len(head)} bytes, as "
                "Inference-Header-Content-Length says: it must be the JSON's exact length)"
            )
        raise error from None
    items = doc.get("inputs")
    if not isinstance(items, list) or not items:
        raise BadRequest("request needs 'inputs': a non-empty list of tensors")
    parsed: list[_TensorHeader] = []
    seen: set[str] = set()  # a set: checked pairwise, 10,000 inputs took seconds
    read, over = oip_names.bounded(items, None if limits is None else limits.inputs)
    for index, raw in enumerate(read):
        tensor = _tensor_header(_object(raw, f"inputs[{index}]"), index, binary)
        if tensor.name in seen:
            raise BadRequest(f"input '{tensor.name}' is given twice")
        seen.add(tensor.name)
        parsed.append(tensor)
    if over:  # none repeated among them: one at least is not the model's
        raise oip_names.TooMany("inputs", len(items), (tensor.name for tensor in parsed))
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("'id' must be a string")
    flag = _flag(_parameters(doc, "request"), "binary_data_output", "request", head)
    binary_default = flag is True
    outputs, binary_outputs, classes, refused = _requested_outputs(
        doc.get("outputs"), binary_default, head, None if limits is None else limits.outputs
    )
    return _Header(
        tuple(parsed), request_id, outputs, binary_outputs, binary_default, classes, refused
    )


def _tensor_header(item: Mapping[str, Any], index: int, binary: bool) -> _TensorHeader:
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"inputs[{index}] needs a 'name'")
    dtype = tensors.datatype(item.get("datatype"), name)
    shape = tensors.check_shape(item.get("shape"), name)
    parameters = _parameters(item, f"input '{name}'")
    _no_shared_memory(parameters, f"input '{name}'")
    size = parameters.get("binary_data_size")
    if size is None:
        if "data" not in item:
            raise BadRequest(f"input '{name}' has neither 'data' nor parameters.binary_data_size")
        return _TensorHeader(name, dtype, shape, None, item["data"])
    if "data" in item:  # two values for one tensor: which did the caller mean?
        raise BadRequest(
            f"input '{name}' has both 'data' and parameters.binary_data_size: send one of them"
        )
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadRequest(f"input '{name}' binary_data_size must be a non-negative integer")
    if not binary:
        raise BadRequest(
            f"input '{name}' has binary_data_size but the request has no "
            "Inference-Header-Content-Length header"
        )
    return _TensorHeader(
        name, dtype, shape, size, None, tensors.plain_bytes(dtype, shape), dtype.wire
    )


def _requested_outputs(
    wanted: object, binary_default: bool, head: bytes, most: int | None = None
) -> tuple[
    tuple[str, ...] | None,
    frozenset[str],
    oip_classification.Requested,
    oip_classification.Refused,
]:
    if wanted is None:
        return None, frozenset(), (), ()
    if not isinstance(wanted, list):
        raise BadRequest("'outputs' must be a list")
    if not wanted:  # `[]` names none: every output, as when absent (binary_data_output holds)
        return None, frozenset(), (), ()
    names: dict[str, None] = {}  # in the order asked; a list was searched for each name
    binary: set[str] = set()
    classes: list[tuple[str, int]] = []
    refused: list[tuple[str, str]] = []  # raised once the names are checked against the model
    read, over = oip_names.bounded(wanted, most)
    for index, raw in enumerate(read):
        item = _object(raw, f"outputs[{index}]")
        name = item.get("name")
        if not isinstance(name, str):
            raise BadRequest(f"outputs[{index}] needs a 'name'")
        if name in names:  # Triton refuses it too: which of the two settings would hold?
            raise BadRequest(f"output '{name}' is requested twice")
        names[name] = None
        parameters = _parameters(item, f"output '{name}'")
        _no_shared_memory(parameters, f"output '{name}'")
        count = parameters.get(oip_classification.EXTENSION)  # tritonclient's class_count
        if count is not None:
            try:
                classes.append((name, oip_classification.class_count(count, name, head)))
            except BadRequest as error:  # said once the name is known to be the model's
                refused.append((name, error.message))
        own = _flag(parameters, "binary_data", f"output '{name}'", head)  # overrides the request's
        if own or (own is None and binary_default):
            binary.add(name)
    if over:  # none repeated among them: one at least is not the model's
        raise oip_names.TooMany("outputs", len(wanted), names)
    return tuple(names), frozenset(binary), tuple(classes), tuple(refused)


def _no_shared_memory(parameters: Mapping[str, Any], what: str) -> None:
    """Triton's shared-memory extension (not in `/v2`'s extensions): an output asked for in a
    region was answered in the body, the region never written, and an input in one was said
    to have "neither 'data' nor parameters.binary_data_size"."""
    if "shared_memory_region" in parameters:
        raise BadRequest(
            f"{what} names a shared_memory_region: this server does not offer the shared-memory "
            "extension (a function shares no memory with its callers); send the tensor in the "
            "request, as JSON data or binary"
        )


def _flag(parameters: Mapping[str, Any], key: str, what: str, head: bytes) -> bool | None:
    """A boolean parameter of the binary extension, None when absent. Anything but a JSON
    boolean ("true", 1) is refused: ignoring it would answer in a format the caller did not
    ask for. `head`: the JSON, to quote a refused integer beyond 64 bits as it was sent."""
    value = parameters.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise BadRequest(f"{what} parameter '{key}' must be true or false; got {as_typed(value, head)}")


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
                tensors.to_json_data(array) if array.dtype == object else array.reshape(-1)
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
