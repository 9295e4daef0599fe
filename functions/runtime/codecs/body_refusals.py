"""The 400s and 422s of simple JSON bodies of the wrong shape (codecs/simple.py): each says
what to send instead."""

from __future__ import annotations

from typing import Any

from functions.runtime.codecs.json_errors import PIXELS
from functions.runtime.errors import BadRequest
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.validation import describe


def ragged(value: object, spec: TensorSpec) -> str:
    """The 422 for rows numpy cannot stack. Rows of different lengths to a dynamic axis (token
    ids of a sequence model, [N, T]) fit the model one at a time, but not in one tensor."""
    row = list(spec.shape[1:])
    lengths = (
        sorted({len(r) for r in value if isinstance(r, list)}) if isinstance(value, list) else []
    )
    if len(lengths) < 2 or -1 not in row:
        return f"input '{spec.name}' is ragged: every row must have shape {row}"
    return (
        f"input '{spec.name}' is ragged: its rows have {len(lengths)} lengths "
        f"({', '.join(map(str, lengths[:5]))}); the rows of one request make one tensor "
        f"{list(spec.shape)}, so they must have one length: pad the shorter rows (token ids: "
        "with the padding id), or send rows of each length in a request of their own"
    )


# What TF-Serving's REST clients (and generated ones) send with every request, and Vertex AI
# sends a custom container: meaningless here, so taken as sent (a model has one signature).
SERVING_DEFAULT = ("signature_name", "serving_default")


def refuse_unknown_fields(body: dict[str, Any], fields: frozenset[str]) -> None:
    """A 400 naming a key nothing reads: ignored, a misspelled option (`"topk": 3`, a
    `"threshold"`) answered as if never sent. TF-Serving's `"signature_name":
    "serving_default"` and an empty `"parameters"` (Vertex AI's body) are taken: they ask for
    nothing a model here does not do."""
    if "top_k" in body:  # read from the query only: a body's was ignored, one label answered
        raise BadRequest(
            "top_k is a query parameter, not read from the body: POST .../predict?top_k=3"
        )
    for key in sorted(key for key in body if key not in fields):
        value = body[key]
        if (key, value) == SERVING_DEFAULT or (key == "parameters" and value in ({}, None)):
            continue
        if key == "signature_name":
            raise BadRequest(
                f"signature_name {str(value)[:40]!r}: a model here has one signature, "
                '"serving_default" (TF-Serving\'s default); drop signature_name or send that'
            )
        if key == "parameters":
            raise BadRequest(
                '"parameters" are read by explain, not predict: drop them (predict takes '
                '"inputs" or "instances" only; ?top_k is a query parameter)'
            )
        more = ', and "parameters"' if "parameters" in fields else ""
        raise BadRequest(
            f"unknown field {key[:40]!r} in the request body, which would not be read: drop "
            f'it; send "inputs" or "instances"{more}, nothing else'
        )


def refuse_records_under_inputs(value: object) -> None:
    """Rows of named fields sent as "inputs" (they go under "instances"): say so by name, not
    "mixed or null values" or "several inputs", which sent callers hunting in their numbers."""
    first = value[0] if isinstance(value, list) and value else None
    if isinstance(first, dict):
        fields = ", ".join(f'"{key}": ...' for key in list(first)[:3])
        raise BadRequest(
            'rows of named fields go under "instances", not "inputs": send '
            f'{{"instances": [{{{fields}}}, ...]}}'
        )


def no_feature_names(manifest: ModelManifest, row: dict[str, Any]) -> str:
    """Records by field name sent to a model without feature names (an skl2onnx export's one
    input `X`, published without --features): what it takes, and the two ways to fit it. An
    image input's fields are no features to name: TF-Serving's {"b64": ...} (or Vertex's
    {"image_bytes": {"b64": ...}}) is an encoded image, else its pixels go as they are."""
    takes = ", ".join(describe(spec) for spec in manifest.inputs)
    if "b64" in row or any(isinstance(v, dict) and "b64" in v for v in row.values()):
        return f"; b64 is an encoded image (TF-Serving's form), and {PIXELS}"
    if any(spec.rank > 2 for spec in manifest.inputs):
        return f"; this model takes {takes}: send each instance as its values, not a record"
    send = "rows of values" if len(manifest.inputs) == 1 else "records by input name"
    return (
        f"; this model takes {takes} and has no feature names (it was published without "
        f"--features): send {send}, or publish a version with --features naming these fields"
    )


def send_null(spec: TensorSpec) -> str:
    """A field left out of a record is no missing value: how to send one, where it is taken."""
    takes_nan = not spec.finite and spec.dtype in ("float16", "float32", "float64")
    return "; send null for a missing value" if takes_nan else ""
