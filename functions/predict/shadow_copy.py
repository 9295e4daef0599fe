"""The shadow copy: one compact JSON line per sampled request, made on the caller's path and
replayed elsewhere (functions/shadow/: a local replay process, or the ShadowFunction in AWS).

    {"aiaas_shadow": 1, "model": "m", "version": "1", "shadow_version": "2",
     "route": "predict" | "infer", "request_id": "...", "time": <epoch ms>,
     "body": "<the request body as received, as text>" | "body_b64": "<base64>",
     "header": <Inference-Header-Content-Length or null>,
     "answer": {<the simple JSON answer the caller got>}            (predict)
     "outputs": {"<name>": [<nested values>], ...}                  (infer)}

What the caller's path pays (measured in docs/rollout.md): the answer of a predict is the
response body already serialised (embedded as it is, orjson.Fragment); an infer's outputs are
numpy arrays orjson writes natively; the request is the body as received (text, or base64 for
binary tensors), never decoded again here. The replay decodes the request itself, runs the
shadow version and compares it with the answer in the form the caller's version answered.

One line (no raw newline: orjson never writes one), at most MAX_COPY_BYTES: a CloudWatch Logs
event holds 256 KiB, so a bigger copy would be cut in AWS; it is dropped and counted instead.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

MARKER = "aiaas_shadow"  # the key the subscription filter matches: { $.aiaas_shadow = 1 }
FORMAT = 1
MAX_COPY_BYTES = 256 * 1024 - 1024  # a CloudWatch Logs event's limit, less room for its framing
PREDICT, INFER = "predict", "infer"
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE


class BadCopy(ValueError):
    """A line that is not a shadow copy of this format."""


@dataclass(frozen=True)
class ShadowCopy:
    """A decoded copy: what the replay needs to ask the shadow and compare."""

    model: str
    version: str
    shadow_version: str
    route: str
    request_id: str
    time_ms: int
    body: bytes
    header: str | None  # an infer's binary header length (as the caller sent it), else None
    answer: dict[str, Any]  # predict: the caller's answer; infer: {name: values} outputs


def _head(model: str, version: str, shadow: str, route: str, request_id: str) -> dict[str, Any]:
    return {
        MARKER: FORMAT,
        "model": model,
        "version": version,
        "shadow_version": shadow,
        "route": route,
        "request_id": request_id,
        "time": int(time.time() * 1000),
    }


def predict_line(
    labels: tuple[str, str, str], request_id: str, body: bytes, answer_json: str
) -> bytes:
    """A predict copy: `answer_json` is the response body the caller got (valid JSON, one line)."""
    doc = _head(*labels, PREDICT, request_id)
    doc["body"] = body.decode("utf-8", "replace")  # it parsed as JSON, so it is UTF-8
    doc["answer"] = orjson.Fragment(answer_json)
    return orjson.dumps(doc, option=_OPTIONS)


def infer_line(
    labels: tuple[str, str, str],
    request_id: str,
    body: bytes,
    header: str | None,
    outputs: dict[str, np.ndarray],
) -> bytes:
    """An infer copy: the body as received (base64 when it carries binary tensors)."""
    doc = _head(*labels, INFER, request_id)
    if header is None:
        doc["body"] = body.decode("utf-8", "replace")
    else:
        doc["body_b64"] = base64.b64encode(body).decode("ascii")
        doc["header"] = header
    doc["outputs"] = outputs
    return orjson.dumps(doc, option=_OPTIONS, default=_plain)


def _plain(value: object) -> Any:
    """What orjson does not write natively: non-contiguous or string (object) arrays."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not serialisable in a shadow copy")


def decode(line: bytes | str) -> ShadowCopy:
    """The copy in `line`, or BadCopy naming what is wrong."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadCopy(f"not JSON: {exc}") from None
    marker = doc.get(MARKER) if isinstance(doc, dict) else None
    if type(marker) is not int or marker != FORMAT:  # `true` equals 1, and is no format
        raise BadCopy(f"not a shadow copy of format {FORMAT}")
    try:
        route = doc["route"]
        if route not in (PREDICT, INFER):
            raise ValueError(f"route {route!r}")
        body = base64.b64decode(doc["body_b64"]) if "body_b64" in doc else doc["body"].encode()
        answer = doc["answer"] if route == PREDICT else doc["outputs"]
        if not isinstance(answer, dict):  # a copy that is no copy: not the shadow's error
            raise TypeError("answer (an object)")
        return ShadowCopy(
            model=str(doc["model"]),
            version=str(doc["version"]),
            shadow_version=str(doc["shadow_version"]),
            route=route,
            request_id=str(doc.get("request_id", "")),
            time_ms=int(doc.get("time", 0)),
            body=body,
            header=doc.get("header"),
            answer=answer,
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise BadCopy(f"a shadow copy without a valid {exc}") from None
