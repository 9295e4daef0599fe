"""Explain answers for the served model: a body like predict's in, attributions out.

Simple JSON: `{"inputs" | "instances": ..., "parameters": {"samples": N, "patch": P}}` ->
`{"model", "version", "method", "parameters", "features", "outputs", "explanations": [...]}`.
Open Inference Protocol style: an infer request body -> typed tensors `attributions`
[N, features, outputs], `base_value` [N, outputs] and `prediction` [N, outputs].
Text models are explained token by token: each row carries its `tokens` (simple JSON), or a
BYTES tensor `tokens` [N, T] ("" past a text's end, where attributions are 0); raw text sent
to a model with a Hugging Face tokenizer also gives each token's character `offsets` in it.
"""

from __future__ import annotations

import difflib
from dataclasses import replace
from typing import Any

import numpy as np
import orjson

from functions.runtime.baseline_hint import FILES, sample_kind, shape_said, variant_note
from functions.runtime.codecs import oip, simple
from functions.runtime.codecs.json_errors import not_json
from functions.runtime.codecs.wide_integers import as_typed, beyond_64_bits
from functions.runtime.dataplane.model import ModelPlane, check_finite
from functions.runtime.errors import (
    BadRequest,
    InvalidInput,
    NonFiniteAnswer,
    NotFound,
)
from functions.runtime.explain.any_size import AnySizeImageExplainer
from functions.runtime.explain.background import BACKGROUND_FILE, Background
from functions.runtime.explain.explainer import (
    MAX_ROWS,
    MAX_SAMPLES,
    Explainer,
    Explanation,
    explained_columns,
    grouping,
)
from functions.runtime.explain.hf_text import HfTextExplainer, is_hf_text_model
from functions.runtime.explain.text import TextExplainer
from functions.runtime.image_layout import any_size_layout
from functions.runtime.model import LoadedModel
from functions.runtime.text_input import text_input
from functions.runtime.validation import validate_inputs
from functions.runtime.version_extras import read_version_file

PARAMETERS = {"samples", "patch"}
# As check_samples and image_patches say them, for an integer too large to reach them.
RANGES = {"samples": f"from 2 to {MAX_SAMPLES}", "patch": "from 1 to the image's larger side"}
AnyExplainer = Explainer | TextExplainer | HfTextExplainer | AnySizeImageExplainer


class ExplainPlane:
    """Explainers per loaded model version, each with its background read once."""

    def __init__(self, models: ModelPlane, max_seconds: float) -> None:
        self.models = models
        self.max_seconds = max_seconds
        self._explainers: dict[tuple[str, str], AnyExplainer] = {}

    def explain(self, name: str, version: str | None, body: bytes) -> dict[str, Any]:
        return self.explain_model(self.models.model(name, version), body)

    def explain_model(self, model: LoadedModel, body: bytes) -> dict[str, Any]:
        """The simple JSON explanation of `body` by `model` (the version routed to a caller)."""
        doc = _json(body)
        _misplaced(doc, body)
        raw = doc.get("parameters") if isinstance(doc, dict) else None
        samples, patch = _parameters(raw, body)
        inputs = simple.decode(doc, model.manifest, fields=simple.EXPLAIN_FIELDS, raw=body)
        return self.explain_arrays(model, inputs, samples, patch)

    def explain_arrays(
        self,
        model: LoadedModel,
        inputs: dict[str, np.ndarray],
        samples: int | None = None,
        patch: int | None = None,
    ) -> dict[str, Any]:
        """The simple JSON explanation of inputs already read into arrays (`aiaas explain
        --file`): JSON has no infinity, and a file's inf cell sent as JSON became null, a
        missing value, explained as the wrong row (or refused as "a missing value")."""
        explanation = self.patched(model, patch).explain(inputs, samples, patch)
        return simple_document(model, _fit_noted(_finite(model, explanation, inputs)))

    def explain_v2(
        self, name: str, version: str | None, body: bytes, binary_header: str | None = None
    ) -> dict[str, Any]:
        """Typed tensors in, JSON or binary (`binary_header`: Inference-Header-Content-Length,
        as tritonclient sends by default); typed tensors out, as JSON."""
        return self.explain_model_v2(self.models.model(name, version), body, binary_header)

    def explain_model_v2(
        self, model: LoadedModel, body: bytes, binary_header: str | None = None
    ) -> dict[str, Any]:
        """`explain_v2` by `model` (the version routed to a caller)."""
        length = oip.parse_header_length(binary_header, len(body))
        decoded = oip.decode_request(body, length, model.manifest)
        # OIP request parameters carry protocol options too (binary_data_output, ...): only
        # the explain ones are read here.
        head = body[:length] if length else body
        request = _json(head)
        _misplaced(request, head)
        samples, patch = _parameters(_v2_parameters(request), head)
        _oip_named(model, decoded.inputs)
        explanation = self.patched(model, patch).explain(decoded.inputs, samples, patch)
        explained = _fit_noted(_finite(model, explanation, decoded.inputs))
        return tensor_document(model, explained, decoded.id)

    def explainer(self, model: LoadedModel) -> AnyExplainer:
        key = (model.manifest.name, model.manifest.version)
        if key not in self._explainers:
            self._explainers[key] = self._new_explainer(model)
        return self._explainers[key]

    def patched(self, model: LoadedModel, patch: int | None) -> AnyExplainer:
        """The explainer of `model`, InvalidInput when `patch` is given for a model that takes
        no image (was ignored: the same answer as without it, and no word of it)."""
        explainer = self.explainer(model)
        if patch is None or isinstance(explainer, AnySizeImageExplainer):
            return explainer
        if isinstance(explainer, Explainer) and grouping(model.manifest).patch is not None:
            return explainer
        manifest = model.manifest
        way = "column by column" if isinstance(explainer, Explainer) else "token by token"
        raise InvalidInput(
            "patch (--patch, parameters.patch) cuts an image into patches; "
            f"{manifest.name}:{manifest.version} takes no image and is explained {way}: "
            "leave it out"
        )

    def _new_explainer(self, model: LoadedModel) -> AnyExplainer:
        if is_hf_text_model(model):  # a user's transformer with its tokenizer.json
            return HfTextExplainer(model, self.max_seconds)
        if text_input(model.manifest) is not None:
            return TextExplainer(model, self.max_seconds)
        layout = any_size_layout(model.manifest)
        if layout is not None:  # an image of any size: its own mean colour is "absent"
            return AnySizeImageExplainer(model, layout, self.max_seconds)
        return Explainer(model, self._background(model), self.max_seconds)

    def _background(self, model: LoadedModel) -> Background:
        manifest = model.manifest
        columns = explained_columns(manifest)
        store = self.models.served.pool.registry.store
        try:
            # Checked against the manifest's sha256 where it lists it, as the model is.
            text = read_version_file(store, manifest, BACKGROUND_FILE)
        except NotFound:
            ref = f"{manifest.name}:{manifest.version}"
            said = {
                "images": "a sample of the images",
                "inputs": f"a sample of the {shape_said(columns.specs)} images or sequences",
                "rows": "an array of the inputs",
                "table": "a sample of the data",
            }
            kind = sample_kind(columns.specs)
            data, variant = f"{FILES[kind]}` ({said[kind]}", variant_note(manifest)
            raise InvalidInput(
                f"model {ref} has no background to explain against; add one with "
                f"`aiaas baseline {ref} {data} it was trained on), or "
                f"train it with `aiaas train`, which stores one{variant}"
            ) from None
        return Background.from_json(text, columns.width, columns.strings)


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise not_json(exc, body) from None


# A parameter given beside the inputs, not under "parameters": it was ignored without a word
# (`"samples": 5000` explained with the default samples). SHAP's own name for it too.
MISPLACED = {"samples": "samples", "nsamples": "samples", "patch": "patch"}


def _misplaced(doc: object, body: bytes) -> None:
    """A 400 for an explain parameter at the top of the body, where nothing reads it."""
    if not isinstance(doc, dict):
        return
    for key, name in MISPLACED.items():
        if key in doc:
            value = doc[key]
            shown = as_typed(value, body) if beyond_64_bits(value) else orjson.dumps(value).decode()
            raise BadRequest(
                f'"{key}" is not read at the top of the body: give it under "parameters", '
                f'like {{"parameters": {{"{name}": {shown[:40]}}}}}'
            )


def _v2_parameters(request: dict[str, Any]) -> object:
    """The explain parameters of an OIP request: its `parameters` less the protocol's options
    (binary_data_output, ...), which are left to it. A key that reads as a slip of an explain
    one (`nsamples`, SHAP's name; `sample`, `patches`), or one put on an input tensor, is a
    400: they were dropped, and the default explained with a 200."""
    for tensor in request.get("inputs") or []:
        own = tensor.get("parameters") if isinstance(tensor, dict) else None
        for key in own if isinstance(own, dict) else ():
            if (meant := _meant(key)) is not None:
                raise BadRequest(
                    f"input {tensor.get('name')!r} has parameters.{key}, which nothing reads: "
                    f'give {meant!r} in the request\'s own "parameters", like '
                    f'{{"inputs": [...], "parameters": {{"{meant}": ...}}}}'
                )
    raw = request.get("parameters")
    if not isinstance(raw, dict):
        return raw
    for key in raw:
        if key not in PARAMETERS and (meant := _meant(key)) is not None:
            raise BadRequest(
                f"unknown explain parameter {key!r} (is it {meant!r}?); known: "
                f"{sorted(PARAMETERS)} (the request's other parameters are the protocol's, "
                "such as binary_data_output)"
            )
    return {k: v for k, v in raw.items() if k in PARAMETERS}


def _meant(key: object) -> str | None:
    """The explain parameter `key` names or is a slip of (cutoff 0.6: `sample`, `n_samples`,
    `patch_size`; not binary_data_output, content_type, priority or the sequence options)."""
    if not isinstance(key, str):
        return None
    slips = {"samples": "samples", "nsamples": "samples", "patch": "patch"}
    found = difflib.get_close_matches(key.lower(), list(slips), n=1, cutoff=0.6)
    return slips[found[0]] if found else None


def _parameters(raw: object, body: bytes) -> tuple[int | None, int | None]:
    """The explain parameters; `body` (the JSON they came from) only to quote a refused one."""
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise BadRequest('"parameters" must be an object like {"samples": 2048}')
    unknown = sorted(set(raw) - PARAMETERS)
    if unknown:
        raise BadRequest(f"unknown explain parameter {unknown[0]!r}; known: {sorted(PARAMETERS)}")
    values = []
    for name in ("samples", "patch"):
        value = raw.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            if beyond_64_bits(value):  # orjson's float for a huge integer: out of range
                raise InvalidInput(f"{name} must be {RANGES[name]}; got {as_typed(value, body)}")
            shown = orjson.dumps(value).decode()[:40]  # as JSON spells it: true, "5", 7.5
            raise BadRequest(f"parameters.{name} must be an integer; got {shown}")
        values.append(value)
    return values[0], values[1]


def _fit_noted(explanation: Explanation) -> Explanation:
    """The explanation, its parameters naming the rows whose coalitions did not pin every
    attribution (`underdetermined_rows`: least-squares values of least norm, groups never drawn
    apart sharing alike): some draws of 2 coalitions a group do, the fewest `samples` takes."""
    loose = [i for i, row in enumerate(explanation.rows) if not row.determined]
    if not loose:
        return explanation
    return replace(
        explanation, parameters={**explanation.parameters, "underdetermined_rows": loose}
    )


def simple_document(model: LoadedModel, explanation: Explanation) -> dict[str, Any]:
    manifest = model.manifest
    rows = []
    for index, row in enumerate(explanation.rows):
        entry: dict[str, Any] = {
            "prediction": row.prediction.tolist(),
            "base_value": row.base.tolist(),
            "attributions": row.values.tolist(),
        }
        if explanation.tokens is not None:  # a text's own tokens, not the batch's padding
            tokens = explanation.tokens[index]
            entry |= {"tokens": tokens, "attributions": row.values[: len(tokens)].tolist()}
            if explanation.offsets is not None:  # where each token is in the text sent
                entry["offsets"] = explanation.offsets[index]
        if manifest.postprocessing is not None and len(explanation.outputs) == len(row.prediction):
            entry["label"] = explanation.outputs[int(np.argmax(row.prediction))]
        if not row.determined:  # also in an `aiaas explain --file` line, which has no parameters
            entry["underdetermined"] = True
        rows.append(entry)
    doc: dict[str, Any] = {
        "model": manifest.name,
        "version": manifest.version,
        "method": explanation.method,
        "parameters": explanation.parameters,
        "features": explanation.features,
        "outputs": explanation.outputs,
        "explanations": rows,
    }
    if explanation.tokens is not None:
        del doc["features"]  # each text has its own: its tokens
    return doc


def tensor_document(
    model: LoadedModel, explanation: Explanation, request_id: str | None
) -> dict[str, Any]:
    attributions = np.stack([r.values for r in explanation.rows])
    base = np.stack([r.base for r in explanation.rows])
    prediction = np.stack([r.prediction for r in explanation.rows])
    doc: dict[str, Any] = {
        "model_name": model.manifest.name,
        "model_version": model.manifest.version,
        "parameters": {
            "method": explanation.method,
            **explanation.parameters,
            "features": explanation.features,
            "outputs": explanation.outputs,
        },
        "outputs": [
            _tensor("attributions", attributions),
            _tensor("base_value", base),
            _tensor("prediction", prediction),
        ],
    }
    if explanation.tokens is not None:
        del doc["parameters"]["features"]
        doc["outputs"].append(_tokens(explanation.tokens, attributions.shape[1]))
        if explanation.offsets is not None:
            doc["outputs"].append(_offsets(explanation.offsets, attributions.shape[1]))
    if request_id:
        doc["id"] = request_id
    return doc


def _tensor(name: str, array: np.ndarray) -> dict[str, Any]:
    return {
        "name": name,
        "datatype": "FP64",
        "shape": list(array.shape),
        "data": array.reshape(-1).tolist(),
    }


def _tokens(tokens: list[list[str]], width: int) -> dict[str, Any]:
    """Each text's tokens as a BYTES tensor [N, width], "" past its end (padding)."""
    data = [t for row in tokens for t in row + [""] * (width - len(row))]
    return {"name": "tokens", "datatype": "BYTES", "shape": [len(tokens), width], "data": data}


def _offsets(offsets: list[list[list[int]]], width: int) -> dict[str, Any]:
    """Each token's [start, end) in its text as an INT64 tensor [N, width, 2], -1 past its end."""
    table = np.full((len(offsets), width, 2), -1, dtype=np.int64)
    for row, spans in enumerate(offsets):
        table[row, : len(spans)] = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    data = table.reshape(-1).tolist()
    return {"name": "offsets", "datatype": "INT64", "shape": list(table.shape), "data": data}


def _finite(
    model: LoadedModel, explanation: Explanation, inputs: dict[str, np.ndarray]
) -> Explanation:
    """The explanation, unless the model answered NaN or infinity for some coalition: JSON
    carries that as null, and an explanation of nulls went out with a 200 (the predict route
    answers the same values with a 500, the inputs being valid). A row whose own prediction is
    so is told as predict tells it: a 422 when each such row holds a value it cannot score."""
    predictions = [row.prediction for row in explanation.rows]
    if predictions and not all(np.isfinite(p).all() for p in predictions):
        check_finite(model, {"prediction": np.stack(predictions)}, inputs)
    for row in explanation.rows:
        if not all(np.isfinite(a).all() for a in (row.values, row.base, row.prediction)):
            message = f"model {model.ref} answered non-finite values (NaN or infinity)"
            raise NonFiniteAnswer(
                f"{message} for a coalition of the explanation (its inputs with parts absent)",
                public_message=f"{message} for the explanation's masked inputs",
            )
    return explanation


def _oip_named(model: LoadedModel, inputs: dict[str, np.ndarray]) -> None:
    """Refuses typed tensors the explainer would refuse, with the same leniency (an FP64 tensor
    for an FP32 input is cast, as a JSON number is), naming OIP datatypes as infer does: it said
    `expects float32` to a caller who sent BOOL, and knows FP32. A text model's inputs (its text,
    even under its ids input's name) are left to its explainer, which reads them."""
    manifest = model.manifest
    if text_input(manifest) is None and set(inputs) <= {spec.name for spec in manifest.inputs}:
        validate_inputs(manifest, inputs, max_batch_size=MAX_ROWS, typed=False, named=True)
