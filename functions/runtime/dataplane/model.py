"""Model-level answers for one served model: predict (simple JSON), infer (Open Inference
Protocol, JSON or binary tensors), metadata and readiness. Bodies in, documents or bytes out."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from functions.runtime import names
from functions.runtime.answer_size import check_answer_size
from functions.runtime.batch.nonfinite import nonfinite_rows
from functions.runtime.codecs import json_bools, simple
from functions.runtime.codecs.json_errors import not_json
from functions.runtime.drift.monitor import DriftMonitor
from functions.runtime.dtypes import BY_NAME
from functions.runtime.errors import (
    AiaasError,
    BadRequest,
    InvalidInput,
    ModelNotFound,
    ModelUnavailable,
    NonFiniteAnswer,
    NotFound,
    VersionPruned,
)
from functions.runtime.finite import all_finite
from functions.runtime.model import LoadedModel
from functions.runtime.served import ServedModel
from functions.runtime.text_input import ids_only

if TYPE_CHECKING:
    from functions.runtime.codecs.oip import InferRequest

MAX_TOP_K = 1000
SHOWN_ROWS = 5  # row indexes named in an error


class ModelPlane:
    """Answers for the model a function serves (name + version or alias)."""

    def __init__(self, served: ServedModel, drift: DriftMonitor | None = None) -> None:
        self.served = served
        self.drift = drift  # histograms of the rows answered, for versions with a baseline
        # Pinned versions that resolved, or that a prune deleted: only these may label metrics
        # (any other string a caller sends would be a new series, without bound).
        self.resolved_versions: set[str] = set()
        self._oip: ModuleType | None = None  # the OIP codec, once an OIP request needed it

    @property
    def oip(self) -> ModuleType:
        """The OIP codec (codecs/oip.py): imported by the first OIP request or metadata call,
        not at a cold start (a simple-JSON function never needs it), then kept here, where a
        request reads it in ~50 ns (an import statement of it: ~300 ns a request)."""
        if self._oip is None:
            from functions.runtime.codecs import oip

            self._oip = oip
        return self._oip

    def model(self, name: str, version: str | None = None) -> LoadedModel:
        """The loaded model for `name` (and a pinned `version`), or NotFound / Unavailable."""
        if name != self.served.name:  # the served name is valid; anything else is checked
            names.model_name(name)
            raise ModelNotFound(
                f"model {name!r} is not served here; this endpoint serves {self.served.name!r}"
            )
        if version is None:
            return self.served.current()
        try:
            model = self.served.version(names.version_name(version))
        except VersionPruned:  # a version once published: its pinned callers' 404s count for
            self.resolved_versions.add(version)  # it on every worker, loaded there or not
            raise
        self.resolved_versions.add(version)
        return model

    def routed(
        self, name: str, version: str | None, routing_key: Callable[[], str | None]
    ) -> LoadedModel:
        """The model that answers one request: a pinned `version`, else the alias's version
        for this caller (`routing_key` is asked only when the alias splits traffic)."""
        if version is None and name == self.served.name:
            return self.served.pick(routing_key)
        return self.model(name, version)

    @property
    def answering_version(self) -> str:
        loaded = self.served.loaded
        return loaded.manifest.version if loaded else "-"

    def predict(self, model: LoadedModel, body: bytes, top_k: int) -> dict[str, Any]:
        """The simple JSON answer of `model` (see `routed`) to `body`."""
        if top_k > 1 and model.manifest.postprocessing is None:  # asked for, not ignored
            raise BadRequest(
                f"top_k ranks a classifier's labels; {model.manifest.name}:"
                f"{model.manifest.version} has no class scores (its outputs come as they are)"
            )
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise not_json(exc, body) from None
        bools = json_bools.may_hold_bools(body)
        inputs = simple.decode(doc, model.manifest, bools=bools, raw=body)
        outputs = model.predict(inputs, typed=False)
        check_answer_size(model, outputs)
        check_finite(model, outputs, inputs)
        if self.drift is not None and not self.drift.idle(model):
            self.drift.record(model, inputs, outputs)
        return simple.encode(model.manifest, outputs, top_k)

    def infer(
        self, model: LoadedModel, body: bytes, binary_header: str | None
    ) -> tuple[Any, int | None]:
        """(response body, JSON header length if the response carries binary tensors)."""
        decoded, outputs = self.infer_outputs(model, body, binary_header)
        answer: tuple[Any, int | None] = self.oip.encode_response(model.manifest, decoded, outputs)
        return answer

    def infer_outputs(
        self, model: LoadedModel, body: bytes, binary_header: str | None
    ) -> tuple[InferRequest, dict[str, np.ndarray]]:
        """The decoded infer request and `model`'s outputs for it, before encoding."""
        oip = self.oip
        length = oip.parse_header_length(binary_header, len(body))
        decoded: InferRequest = oip.decode_request(body, length, model.manifest)
        if decoded.classifications or decoded.refused_counts:  # a 400 before the model runs
            from functions.runtime.codecs import oip_classification  # imported by `oip`

            oip_classification.check(
                model.manifest, decoded.classifications, decoded.refused_counts
            )
        return decoded, self.run_decoded(model, decoded)

    def run_decoded(self, model: LoadedModel, decoded: InferRequest) -> dict[str, np.ndarray]:
        """`model`'s outputs for an infer request already decoded (a shadow replays it so)."""
        wanted = decoded.outputs
        if self.drift is None or self.drift.idle(model):
            outputs = model.predict(decoded.inputs, typed=True, outputs=wanted)
            check_answer_size(model, outputs)
            check_finite(model, outputs, decoded.inputs)
            return outputs
        # Drift bins the prediction too: a caller naming only other outputs (a label, or
        # tritonclient's class_count on the scores) still has it run, not answered.
        watched = self.drift.watched(model)  # the one its baseline was fitted on
        extra = bool(wanted) and watched not in (wanted or ())
        asked = (*(wanted or ()), watched) if extra else wanted
        outputs = model.predict(decoded.inputs, typed=True, outputs=asked)
        prediction = outputs.pop(watched) if extra else None
        check_answer_size(model, outputs)
        check_finite(model, outputs, decoded.inputs)
        if prediction is None:
            self.drift.record(model, decoded.inputs, outputs)
        else:
            self.drift.record(model, decoded.inputs, {**outputs, watched: prediction})
        return outputs

    def metadata(self, name: str, version: str | None) -> dict[str, Any]:
        model = self.model(name, version)
        doc: dict[str, Any] = self.oip.model_metadata(
            model.manifest, self._published(model.manifest.version)
        )
        return doc

    def _published(self, answering: str) -> list[str]:
        """The served model's versions GET /v2/models/{name} names: a listing is an S3 LIST
        ($0.005 per 1,000, 12.5x a GET, ~20-50 ms) that clients polling metadata made on every
        call, so the one made within an alias TTL (`served.ttl`) serves, the bare name's
        re-resolution's included (it listed the same folder again); listed again when the one
        answering is not among them (published since the listing)."""
        registry, name = self.served.pool.registry, self.served.name
        try:
            found = registry.listing(name, reuse_within=self.served.ttl).published
            if answering not in found:
                found = registry.listing(name).published
        except AiaasError:
            return [answering]
        return list(found)

    def tokenizer(self, model: LoadedModel) -> tuple[str, bytes]:
        """(kind, document) of the tokenizer `model` reads text with, for clients that tokenize
        themselves: a tokenizer.json, or our vocab.json; NotFound for other models."""
        if model.text is None:
            raise NotFound(
                f"model {model.ref} takes no raw text, so it has no tokenizer to give; "
                f"its inputs are in GET /v2/models/{model.manifest.name}"
            )
        if model.text.vocabulary is None:
            raise NotFound(ids_only(model.text.text, model.ref))
        return model.text.vocabulary.kind, model.text.vocabulary.document()

    def ready(self, name: str, version: str | None) -> tuple[bool, dict[str, Any]]:
        """(ready?, the answer); a model that cannot load is not ready, with the reason."""
        try:
            model = self.model(name, version)
        except ModelUnavailable as exc:
            return False, {"error": exc.public_message, "ready": False}
        doc: dict[str, Any] = {
            "name": model.manifest.name,
            "version": model.manifest.version,
            "ready": True,
        }
        offline = self.served.offline
        if version is None and offline is not None:  # the store away since this copy started
            doc.update(served_from="local record", store=offline)
        return True, doc


def check_finite(
    model: LoadedModel, outputs: dict[str, np.ndarray], inputs: dict[str, np.ndarray]
) -> None:
    """Refuse an answer holding NaN or infinity (one BLAS call an output, ~0.5 us a small one:
    validation.all_finite): a caller must not take it for an answer. A 422 when every row
    answered so had a missing or infinite input (a model published with --allow-nonfinite
    takes them; what it cannot score, the caller can fill in or leave out), else a 500: the
    inputs were finite, so the model failed."""
    for name, value in outputs.items():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not all_finite(value):
            message = f"model {model.ref} answered non-finite values (NaN or infinity)"
            unscorable = _rows_with_gaps(model, outputs, inputs)
            if unscorable is not None:
                raise InvalidInput(unscorable)
            raise NonFiniteAnswer(f"{message} in output {name!r}", public_message=message)


def _rows_with_gaps(
    model: LoadedModel, outputs: dict[str, np.ndarray], inputs: dict[str, np.ndarray]
) -> str | None:
    """Why the rows answered NaN or infinity are the request's, when each held a missing or
    infinite input value; else None."""
    arrays = [v for v in inputs.values() if isinstance(v, np.ndarray) and v.ndim >= 1]
    if not arrays:
        return None
    rows = len(arrays[0])
    try:
        answered = nonfinite_rows(
            {k: v for k, v in outputs.items() if isinstance(v, np.ndarray)}, rows
        )
        gaps = np.zeros(rows, dtype=bool)
        floats = {
            s.name: BY_NAME[s.dtype].numpy for s in model.manifest.inputs if s.dtype[:5] == "float"
        }
        for name, value in inputs.items():
            if isinstance(value, np.ndarray) and value.ndim >= 1 and value.dtype.kind == "f":
                # As the model read it: a simple JSON 1e39 is float32's infinity, a gap.
                with np.errstate(over="ignore"):
                    served = value.astype(floats.get(name, value.dtype), copy=False)
                gaps |= ~np.isfinite(served.reshape(rows, -1)).all(axis=1)
    except ValueError:  # an output or input without one row per request row
        return None
    if answered is None or not gaps.any() or (answered & ~gaps).any():
        return None
    bad = np.flatnonzero(answered).tolist()
    shown = ", ".join(str(i) for i in bad[:SHOWN_ROWS]) + (" ..." if len(bad) > SHOWN_ROWS else "")
    return (
        f"model {model.ref} answered NaN or infinity for {len(bad)} of {rows} rows (index "
        f"{shown}), each with a missing (null/NaN) or infinite input value it cannot score: "
        "fill those values in, or leave those rows out"
    )


def top_k(raw: str | None) -> int:
    """The `top_k` query parameter: 1 when absent, else an integer from 1 to MAX_TOP_K."""
    if raw is None:
        return 1
    # Length first: int() of over 4,300 digits raises ValueError (a 500 from a query string).
    digits = raw.isascii() and raw.isdigit() and len(raw) <= len(str(MAX_TOP_K))
    if not digits or not 1 <= int(raw) <= MAX_TOP_K:
        raise BadRequest(f"top_k must be an integer from 1 to {MAX_TOP_K}; got {raw[:40]!r}")
    return int(raw)
