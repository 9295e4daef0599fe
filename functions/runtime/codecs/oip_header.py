"""An Open Inference Protocol request's JSON header, parsed and checked (codecs/oip.py slices
the tensors it describes): its inputs (JSON data, or the size of each binary one), `id`, and
the outputs asked for, binary or as their top classes (oip_classification). Anything it cannot
honour is a 400 that says what to send instead, never ignored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from functions.runtime.codecs import oip_classification, oip_names, tensors
from functions.runtime.codecs.json_errors import not_json
from functions.runtime.codecs.wide_integers import as_typed
from functions.runtime.dtypes import DType
from functions.runtime.errors import BadRequest


def _object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object")
    return value


def _parameters(item: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    parameters = item.get("parameters")  # absent or null: none; [] is no object either
    return {} if parameters is None else _object(parameters, f"{what} parameters")


@dataclass(frozen=True)
class TensorHeader:
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
class Header:
    tensors: tuple[TensorHeader, ...]
    id: str | None
    outputs: tuple[str, ...] | None
    binary_outputs: frozenset[str]
    binary_default: bool
    classifications: oip_classification.Requested
    refused_counts: oip_classification.Refused


def parse_header(head: bytes, *, binary: bool, limits: oip_names.Limits | None) -> Header:
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
    parsed: list[TensorHeader] = []
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
    return Header(
        tuple(parsed), request_id, outputs, binary_outputs, binary_default, classes, refused
    )


def _tensor_header(item: Mapping[str, Any], index: int, binary: bool) -> TensorHeader:
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
        return TensorHeader(name, dtype, shape, None, item["data"])
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
    return TensorHeader(
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
