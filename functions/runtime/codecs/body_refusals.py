"""The 400s and 422s of simple JSON bodies of the wrong shape (codecs/simple.py): each says
what to send instead."""

from __future__ import annotations

from typing import Any

from functions.runtime.codecs import nulls
from functions.runtime.codecs.json_errors import PIXELS
from functions.runtime.column_names import collision
from functions.runtime.errors import BadRequest
from functions.runtime.input_messages import describe
from functions.runtime.manifest import ModelManifest, TensorSpec


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
TOP_K = "top_k is a query parameter, not read from the body: POST .../predict?top_k=3"


OPTIONS = ("topk", "parameters", "outputs", "signaturename")  # folded: no _ or -, lower case


def refuse_options(body: dict[str, Any], fields: frozenset[str]) -> None:
    """A 400 for a key beside the inputs that asks for an option the body cannot give, or
    misspells one it can: read nowhere, it was answered as if never sent (`"topK": 3`: one
    label; explain's `"paramters"`: the default samples). Other keys are the caller's own (an
    id, notes: captured, unless denied) and pass. TF-Serving's `"signature_name":
    "serving_default"` and an empty `"parameters"` (Vertex AI's body) ask nothing and pass."""
    for key in body:
        if key in fields or key == "inputs" or key == "instances":
            continue
        option = _option(key)
        value = body[key]
        if option is None or (key, value) == SERVING_DEFAULT:
            continue
        if option == "topk":  # read from the query only: a body's answered one label
            raise BadRequest(TOP_K if key == "top_k" else f"{key[:40]!r}: {TOP_K}")
        if option == "parameters" and "parameters" in fields:  # explain's, misspelled
            raise BadRequest(f'unknown field {key[:40]!r}: explain reads "parameters"')
        if option == "parameters" and key == "parameters" and value in ({}, None):
            continue
        if option == "parameters":
            raise BadRequest(
                f"{key[:40]!r}: predict reads no parameters (explain does): drop them; "
                'predict takes "inputs" or "instances", and ?top_k in the query'
            )
        if option == "signaturename" and value == SERVING_DEFAULT[1]:  # the key misspelled
            raise BadRequest(f"{key[:40]!r}: TF-Serving's key is signature_name (or drop it)")
        if option == "signaturename":
            raise BadRequest(
                f"{key[:40]!r} {str(value)[:40]!r}: a model here has one signature, "
                '"serving_default" (TF-Serving\'s default); drop signature_name or send that'
            )
        raise BadRequest(
            f"{key[:40]!r} is not read by this route, which answers every output: name "
            "outputs on the Open Inference Protocol route, POST /v2/models/{name}/infer"
        )


def _option(key: str) -> str | None:
    """The option `key` names (any case, _ or -) or, for the longer names, misspells by one
    letter, else None. `topk` is matched whole: one letter off it are words of their own (a
    caller's `top`, `tops`, `tok`)."""
    folded = key.replace("_", "").replace("-", "").lower()
    for option in OPTIONS:
        if folded == option:
            return option
        if len(option) > 4 and abs(len(folded) - len(option)) <= 1 and _one_edit(folded, option):
            return option
    return None


def _one_edit(a: str, b: str) -> bool:
    """Whether `a` is `b` with one letter added, dropped, changed or two swapped."""
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (
            len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )  # fmt: skip
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


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


COMPARED_FIELDS = 1000  # the unknown fields of a record compared with its missing input


def unknown_input(
    where: str, missing: str, unknown: list[str], row: dict[str, Any], manifest: ModelManifest
) -> str:
    """The 422 for record `row` (at `where`), which lacks input `missing` and holds fields no
    input has (`unknown`). TF-Serving's {"b64": ...} (or Vertex's {"image_bytes": {"b64": ...}})
    is an encoded image whatever its key: said alone, as a guess that "image_bytes" misspelled
    an input "image" sent its client renaming a field that would be refused anyway."""
    encoded = _encoded_image(row)
    if encoded:
        return f"{where} holds an encoded image ({encoded}, TF-Serving's form): {PIXELS}"
    import difflib  # here: 2 ms of a cold start, for a refusal only

    # The field most like the missing input, not an id that sorts first. Among the first
    # fields only: each is compared in full (cutoff 0), and a record of 500,000 fields held
    # the server's one event loop for seconds; one that many is no misspelt record.
    compared = unknown[:COMPARED_FIELDS]
    likely = difflib.get_close_matches(missing, compared, n=1, cutoff=0) or compared
    why = f"{where} has unknown input {likely[0]!r}"
    collided = collision([spec.name for spec in manifest.inputs], row)
    if collided:  # no misspelling: two DataFrame columns skl2onnx named alike
        return f"{why}: {collided}"
    if difflib.get_close_matches(missing, likely[:1], n=1, cutoff=0.6):
        why += f" (a misspelling of {missing!r}, which it lacks?)"
    elif manifest.features or len(unknown) < len(row):  # a column renamed, not a misspelling
        # Said alone ("has unknown input 'city'"), the input the model wants instead went
        # unnamed: a week-1 client's `city` sent to a model retrained on a file calling it
        # `town` (hunt_journey8 5).
        # Led by the input it lacks: a caller's `id` beside it, the field that sorts first,
        # was named as the suspect though ids are left aside (rev14 7).
        spec = next(spec for spec in manifest.inputs if spec.name == missing)
        names = [s.name for s in manifest.inputs] if not manifest.features else manifest.features
        shown = ", ".join(names[:SHOWN_INPUTS]) + (", ..." if len(names) > SHOWN_INPUTS else "")
        fields = [likely[0], *(f for f in unknown if f != likely[0])]
        said = ", ".join(repr(f) for f in fields[:SHOWN_FIELDS])
        more = f" and {len(fields) - SHOWN_FIELDS} more" if len(fields) > SHOWN_FIELDS else ""
        return (
            f"{where} lacks input {missing!r} ({describe(spec)}) and has fields the model does "
            f"not read: {said}{more}; the model reads {shown}"
        )
    if not manifest.features and len(unknown) == len(row):  # none is an input
        why += _no_feature_names(manifest)
    return why


SHOWN_INPUTS = 12  # the names a refusal lists, then "..."
SHOWN_FIELDS = 5  # a record's fields that are no input, listed, then "and N more"


def _encoded_image(row: dict[str, Any]) -> str:
    """How `row` holds a base64 image, TF-Serving's way ('{"b64": ...}'), else ""."""
    if "b64" in row:
        return '{"b64": ...}'
    key = next((k for k, v in row.items() if isinstance(v, dict) and "b64" in v), None)
    return "" if key is None else f'{{"{key[:40]}": {{"b64": ...}}}}'


def _no_feature_names(manifest: ModelManifest) -> str:
    """Records by field name sent to a model without feature names (an skl2onnx export's one
    input `X`, published without --features): what it takes, and the two ways to fit it. An
    image input's fields are no features to name: its pixels go as they are."""
    takes = ", ".join(describe(spec) for spec in manifest.inputs)
    if any(spec.rank > 2 for spec in manifest.inputs):
        return f"; this model takes {takes}: send each instance as its values, not a record"
    send = "rows of values" if len(manifest.inputs) == 1 else "records by input name"
    return (
        f"; this model takes {takes} and has no feature names (it was published without "
        f"--features): send {send}, or publish a version with --features naming these fields"
    )


def send_null(spec: TensorSpec) -> str:
    """A field left out of a record is no missing value: how to send one, where it is taken."""
    return "; send null for a missing value" if nulls.takes_missing(spec) else ""
