"""A loaded model (`LoadedModel`): one version's onnxruntime session (opened by onnx_session.py)
and its checks, `predict` and `run`: validated inputs in, the outputs as the manifest names them."""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from functions.runtime import input_cost, run_deadline
from functions.runtime.errors import AiaasError, InvalidInput, ModelUnavailable
from functions.runtime.fixed_batch import one_row_batch, row_by_row
from functions.runtime.label_indexes import label_classes
from functions.runtime.manifest import ModelManifest
from functions.runtime.model_in_memory import ModelSource
from functions.runtime.onnx_session import (
    SMALL_MODEL_BYTES,
    check_graph,
    cpu_count,
    intra_op_threads,
    open_session,
    session_options,
    session_runner,
)
from functions.runtime.ort_errors import model_fault, out_of_memory, refusal
from functions.runtime.said_once import warn_once
from functions.runtime.text_feeds import hf_text_feeds, text_feeds
from functions.runtime.unseen_values import CategoryEncoders
from functions.runtime.validation import compile_rules, validate_inputs

# Opening the session and reading a text model's tokenizer live in onnx_session.py and
# text_feeds.py; their names stay importable from here, where callers and tests find them.
__all__ = [
    "DEFAULT_MAX_BATCH",
    "RUN_TIMED_EVERY",
    "SMALL_MODEL_BYTES",
    "LoadedModel",
    "cpu_count",
    "hf_text_feeds",
    "intra_op_threads",
    "session_options",
]
_session_runner = session_runner  # tests/runtime/test_model.py's name for it

log = logging.getLogger("aiaas.runtime")

DEFAULT_MAX_BATCH = 4096
RUN_TIMED_EVERY = 16  # session.run calls per timed one
# A node's failure is raised (and logged, or answered) here: onnxruntime's own ERROR line on
# stderr would repeat it, once per run that a batch splits a failed chunk into.
_QUIET = ort.RunOptions()
_QUIET.log_severity_level = 4
QUIET_RUN = _QUIET  # the explainer's own wide session runs so too (explain/explainer.py)


class LoadedModel:
    """An ONNX session for one model version, validated against its manifest."""

    def __init__(
        self,
        manifest: ModelManifest,
        path: ModelSource,
        *,
        max_batch_size: int | None = None,
        threads: int | None = None,
        run_limit_s: float = 0.0,
    ):
        self.manifest = manifest
        self.path = path if isinstance(path, Path) else Path("<memory>")
        # Held in memory, its bytes are released once loaded: no second session can be opened.
        self.in_memory = not isinstance(path, Path)
        self.max_batch_size = max_batch_size or manifest.max_batch_size or DEFAULT_MAX_BATCH
        self.session = open_session(manifest, path, threads)
        source = path if isinstance(path, Path) else path.model
        self.encoders = CategoryEncoders(source)  # which value an encoder refused (on a refusal)
        self.cost = input_cost.InputCost(source)  # read when `aiaas serve` asks
        check_graph(manifest, self.session)
        # Text models: raw strings in, tokenized here (None: numeric models pay one check).
        self.text = text_feeds(manifest, self.session)
        self.output_names = [spec.name for spec in manifest.outputs]
        # Moving average of the time in session.run, where onnxruntime holds no GIL, so a server
        # can tell a model worth running off its event loop from a cheap one. One call in
        # RUN_TIMED_EVERY is timed: the clock costs more than a small model's share of a request.
        # One intra-op thread computes on the calling thread: its CPU time, unlike wall time,
        # does not grow when other threads share the cores.
        self.run_seconds = 0.0
        self._calls = 0
        single = intra_op_threads(manifest.weight_bytes) == 1
        self._clock = time.thread_time if single else time.perf_counter
        self._known_outputs = frozenset(self.output_names)
        self._rules = compile_rules(manifest)
        # ZipMap outputs: output name -> a getter of one row's probabilities in column order.
        self._maps = {
            spec.name: (operator.itemgetter(*spec.map_keys), len(spec.map_keys))
            for spec in manifest.outputs
            if spec.map_keys
        }
        # A label output answering class indexes (Postprocessing.label_indexes): its classes.
        self._label_classes = label_classes(manifest)
        self._fix_outputs = bool(self._maps) or self._label_classes is not None
        self._session_run = session_runner(self.session)
        if one_row_batch(manifest):  # exported with a batch of one: several rows, one run each
            self._session_run = row_by_row(self._session_run)
        if run_limit_s > 0:  # a request's runs past it are stopped (AIAAS_MAX_RUN_SECONDS):
            # over all its rows, or many rows each just under it would run rows x the limit
            self._session_run = run_deadline.watched(self._session_run, run_limit_s, self.ref)

    @property
    def ref(self) -> str:
        return f"{self.manifest.name}:{self.manifest.version}"

    def predict(
        self,
        inputs: Mapping[str, np.ndarray],
        *,
        typed: bool = False,
        outputs: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Validate `inputs` against the manifest (text tokenized first) and run the session."""
        if self.text is not None:
            inputs = self.text(inputs)
        feeds = validate_inputs(
            self.manifest,
            inputs,
            max_batch_size=self.max_batch_size,
            typed=typed,
            rules=self._rules,
        )
        if not outputs:
            return self.run(feeds, self.output_names)
        if not self._known_outputs.issuperset(outputs):
            unknown = next(name for name in outputs if name not in self._known_outputs)
            raise InvalidInput(
                f"unknown output {unknown!r}; this model has outputs {self.output_names}"
            )
        return self.run(feeds, list(outputs))

    def failure(self, exc: Exception, feeds: dict[str, np.ndarray]) -> AiaasError:
        """What a failed onnxruntime run of `feeds` (this model's session, or explain's own)
        raises: the caller's 422 when these values were refused, a 503 out of memory, else a 500."""
        refused = refusal(exc)
        if refused is not None:  # these values, not the server: the caller is told why
            rows = len(next(iter(feeds.values()))) if feeds else 0
            fault = model_fault(refused, self.manifest.inputs, rows)
            if fault is not refused:  # the graph's shapes, on rows sent as it says
                warn_once(log, "%s failed on %d validated rows: %s", self.ref, rows, exc)
                return fault
            return self.encoders.explain(refused, feeds)
        warn_once(log, "onnxruntime rejected a validated request for %s: %s", self.ref, exc)
        if "INVALID_ARGUMENT" in str(exc):
            return InvalidInput(f"the model rejected these inputs: {_short(exc)}")
        if out_of_memory(exc):  # a 503 to retry, not a 500: the server ran short, not the model
            return ModelUnavailable(
                f"{self.ref}: inference ran out of memory: {exc}",
                public_message=f"model {self.ref} ran out of memory answering this "
                "request; retry later or send fewer rows",
            )
        return AiaasError(f"{self.ref}: inference failed: {exc}")

    def run(self, feeds: dict[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
        """Run the session on already validated feeds."""
        try:
            self._calls += 1
            if self._calls % RUN_TIMED_EVERY:
                results = self._session_run(wanted, feeds, _QUIET)
            else:
                began = self._clock()
                results = self._session_run(wanted, feeds, _QUIET)
                self.run_seconds += 0.25 * (self._clock() - began - self.run_seconds)
        except run_deadline.RunTooLong:
            raise
        except Exception as exc:
            raise self.failure(exc, feeds) from exc
        named = dict(zip(wanted, results, strict=True))
        if self._fix_outputs:
            if self._maps:
                self.tabulate_maps(named)
            if self._label_classes is not None:
                self._label_classes(named)
        return named

    def tabulate_maps(self, named: dict[str, Any]) -> None:
        """ZipMap outputs (a list of {class: probability} per row) as float32 [N, classes]."""
        for name, (row_values, classes) in self._maps.items():
            rows = named.get(name)
            if rows is None:
                continue
            # One getter call per row, straight into the buffer: ~0.15 us a row, a third less
            # than building the nested lists np.array would take.
            values = map(row_values, rows)
            flat = values if classes == 1 else chain.from_iterable(values)
            try:
                table = np.fromiter(flat, np.float32, count=len(rows) * classes)
            except KeyError as exc:
                raise AiaasError(f"{self.ref}: output {name} lacks class {exc}") from exc
            named[name] = table.reshape(len(rows), classes)


def _short(exc: Exception) -> str:
    text = str(exc).split("] ", 1)[-1]
    return text[:300]
