"""Replays one shadow copy (functions/predict/shadow_copy.py): decodes the request the caller
sent, runs the alias's shadow version on it, compares with the answer the caller got (the
comparison of functions/runtime/dataplane/compare.py) and reports the result as metrics per
version pair (EMF, and the observer `aiaas serve` gives). The two versions' classes are matched
as `aiaas compare` matches them (functions/runtime/dataplane/class_match.py): by name, by class
index when they name them differently (say, `setosa` against `0`), or not at all, when agreement
is not counted; a pair not matched by name, or by name with classes only one has or in
another order, is logged once, saying how. Class scores are compared on the classes both have.

The same code runs in the local replay process (functions/shadow/process.py) and in the
ShadowFunction Lambda (functions/shadow/handler.py); neither is on any caller's path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from functions.predict.shadow_copy import PREDICT, BadCopy, ShadowCopy, decode
from functions.predict.telemetry import RequestMetrics, ShadowLabels, logger
from functions.runtime.codecs import oip, simple
from functions.runtime.dataplane.class_match import ClassMatch
from functions.runtime.dataplane.compare import Comparison, Incomparable, compare
from functions.runtime.dataplane.model import check_finite
from functions.runtime.errors import AiaasError, BadRequest
from functions.runtime.manifest import ModelManifest
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import open_store
from functions.shadow.failures import ShadowFailures

# (labels, seconds the shadow took, comparison or None when it failed)
Result = tuple[ShadowLabels, float, Comparison | None]
MAX_MANIFESTS = 64  # the answering versions' manifests kept (versions are immutable)


class Replayer:
    """Replays copies against the versions of one registry."""

    def __init__(self, pool: ModelPool, metrics: RequestMetrics) -> None:
        self.pool = pool
        self.metrics = metrics
        self._manifests: dict[tuple[str, str], ModelManifest] = {}
        self._classes: dict[ShadowLabels, ClassMatch] = {}  # per version pair, as manifests
        self.failures = ShadowFailures(logger)  # each reason said once, not once a copy

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Replayer:
        """The store and runtime settings the predict functions read (`AIAAS_STORE`, ...)."""
        settings = RuntimeSettings.from_env(env)
        registry = Registry(open_store(settings.store, settings.s3))
        pool, metrics = ModelPool(registry, settings=settings), RequestMetrics.from_env(env)
        # The shadow version's loads, as EMF (`aiaas_model_loads_total`): the predict side
        # never loads it. Locally only the copies' tallies reach /metrics, not these.
        pool.on_load = metrics.version_load
        return cls(pool, metrics)

    def replay_line(self, line: bytes | str) -> Result | None:
        """Replay the copy in `line`; None (logged) when it is not a copy."""
        try:
            copy = decode(line)
        except BadCopy as exc:
            logger.warning("not replayed: %s", exc)
            return None
        return self.replay(copy)

    def replay(self, copy: ShadowCopy) -> Result:
        """Run the shadow version on the copy's request, compare, report; never raises."""
        labels = (copy.model, copy.version, copy.shadow_version)
        start = time.perf_counter()
        try:
            theirs = self._shadow_answer(copy)
            seconds = time.perf_counter() - start
            label_outputs, score_outputs = self._outputs(copy)
            comparison: Comparison | None = compare(
                self._served_answer(copy), theirs, label_outputs, self._match(labels), score_outputs
            )
        except Exception as exc:  # a shadow that fails is what this is here to find
            seconds = time.perf_counter() - start
            self.failures.failed(labels, _reason(exc), copy.request_id)
            comparison = None
        else:
            self.failures.answered(labels)
        self.metrics.shadow(labels, seconds, comparison)
        return labels, seconds, comparison

    def _shadow_answer(self, copy: ShadowCopy) -> dict[str, Any]:
        """The shadow's answer in the simple JSON form, as the caller's is compared."""
        model = self.pool.load_version(copy.model, copy.shadow_version)
        if copy.route == PREDICT:
            try:
                doc = orjson.loads(copy.body)
            except orjson.JSONDecodeError as exc:
                raise BadRequest(f"request body is not valid JSON: {exc}") from None
            inputs = simple.decode(doc, model.manifest, fields=None)  # predict took it
            outputs = model.predict(inputs, typed=False)
        else:
            decoded = oip.decode_request(
                copy.body, oip.parse_header_length(copy.header, len(copy.body)), model.manifest
            )
            inputs = decoded.inputs
            outputs = model.predict(inputs, typed=True, outputs=decoded.outputs)
        check_finite(model, outputs, inputs)
        return simple.encode(model.manifest, outputs)

    def _match(self, labels: ShadowLabels) -> ClassMatch:
        """How the served version's classes match the shadow's (logged once unless by name)."""
        found = self._classes.get(labels)
        if found is None:
            model, version, shadow = labels
            found = ClassMatch.of(self._manifest(model, version), self._manifest(model, shadow))
            note = found.shadow_note()
            if note is not None:
                level = logging.INFO if found.by is not None else logging.WARNING
                logger.log(level, "shadow %s of %s:%s: %s", shadow, model, version, note)
            if len(self._classes) >= MAX_MANIFESTS:
                self._classes.clear()
            self._classes[labels] = found
        return found

    def _outputs(self, copy: ShadowCopy) -> tuple[set[str], set[str]]:
        """The label outputs of both versions (`aiaas compare` leaves them out too), and their
        class-score outputs (compared on the classes both have)."""
        labels, scores = set(), set()
        for version in (copy.version, copy.shadow_version):
            post = self._manifest(copy.model, version).postprocessing
            if post is not None and post.label_output is not None:
                labels.add(post.label_output)
            if post is not None:
                scores.add(post.scores_output)
        return labels, scores

    def _served_answer(self, copy: ShadowCopy) -> dict[str, Any]:
        """The caller's answer in the simple form, its outputs in the types its version gave
        (a float32 written as JSON reads back as the same float32, so differences are exact)."""
        manifest = self._manifest(copy.model, copy.version)
        if copy.route == PREDICT:
            outputs = typed_outputs(manifest, copy.answer["outputs"])
            return {**copy.answer, "outputs": outputs}
        return simple.encode(manifest, typed_outputs(manifest, copy.answer))

    def _manifest(self, name: str, version: str) -> ModelManifest:
        key = (name, version)
        manifest = self._manifests.get(key)
        if manifest is None:
            manifest = self.pool.registry.manifest(name, version)  # one read per version
            if len(self._manifests) >= MAX_MANIFESTS:
                self._manifests.clear()
            self._manifests[key] = manifest
        return manifest


def _reason(exc: Exception) -> str:
    """Why a copy failed, as the replay logs it."""
    if isinstance(exc, AiaasError):
        return exc.message
    if isinstance(exc, Incomparable):  # answered, but not comparable with what the caller got
        return f"not comparable: {exc}"
    return repr(exc)


def typed_outputs(manifest: ModelManifest, outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Outputs read from JSON as arrays of the types `manifest` declares (strings as objects)."""
    dtypes = {spec.name: spec.dtype for spec in manifest.outputs}
    typed = {}
    for name, values in outputs.items():
        dtype = dtypes.get(name, "string")
        typed[name] = np.asarray(values, dtype=object if dtype == "string" else dtype)
    return typed
