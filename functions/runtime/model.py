"""A loaded model: one onnxruntime session checked against its manifest, plus `predict`."""

from __future__ import annotations

import logging
import operator
import os
import time
from collections.abc import Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from functions.runtime import input_cost, mapped_weights, run_deadline
from functions.runtime.artifact_files import nested_external_data, unlisted_external_data
from functions.runtime.cache import ModelInMemory, ModelSource
from functions.runtime.dtypes import BY_NAME, zipmap_type
from functions.runtime.errors import AiaasError, InvalidInput, ModelUnavailable
from functions.runtime.fixed_batch import one_row_batch, row_by_row
from functions.runtime.label_indexes import label_classes
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.ort_errors import model_fault, out_of_memory, refusal
from functions.runtime.said_once import warn_once
from functions.runtime.text_input import TextFeeds, TextInput, text_input
from functions.runtime.unseen_values import CategoryEncoders
from functions.runtime.validation import compile_rules, validate_inputs

log = logging.getLogger("aiaas.runtime")

DEFAULT_MAX_BATCH = 4096


def cpu_count() -> int:
    """CPUs this process may use (Lambda gives vCPUs in proportion to memory)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


# Below this size a model is cheap per row: one request runs fastest on the calling thread, and
# concurrency comes from serving more requests at once, not from splitting one across cores.
SMALL_MODEL_BYTES = 8 * 1024 * 1024
TIMED_EVERY = 16  # session.run calls per timed one
# A node's failure is raised (and logged, or answered) here: onnxruntime's own ERROR line on
# stderr would repeat it, once per run that a batch splits a failed chunk into.
_QUIET = ort.RunOptions()
_QUIET.log_severity_level = 4


def intra_op_threads(model_bytes: int | None = None, configured: int = 0) -> int:
    """`configured` when set; else 1 for small models, else the CPUs available."""
    if configured > 0:
        return configured
    if model_bytes is not None and model_bytes < SMALL_MODEL_BYTES:
        return 1
    return cpu_count()


def session_options(
    model_bytes: int | None = None, threads: int | None = None
) -> ort.SessionOptions:
    """Session options with `threads`, else threads matched to the model and the CPUs available."""
    options = ort.SessionOptions()
    threads = threads or intra_op_threads(model_bytes)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning workers burn the CPU that concurrent requests need; wake them on demand.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def _graph_type(spec: TensorSpec) -> str:
    """The onnxruntime type the graph must give `spec` (a ZipMap for outputs with map keys)."""
    return zipmap_type(spec.map_keys) if spec.map_keys else BY_NAME[spec.dtype].ort


def _check_graph(manifest: ModelManifest, session: ort.InferenceSession) -> None:
    ref = f"{manifest.name}:{manifest.version}"

    def compare(kind: str, specs: Sequence[TensorSpec], args: Sequence[ort.NodeArg]) -> None:
        graph = {arg.name: arg.type for arg in args}
        for spec in specs:
            if graph.get(spec.name) != _graph_type(spec):
                raise ModelUnavailable(
                    f"{ref}: manifest {kind} {spec.name} ({spec.dtype}) is not in the ONNX graph "
                    f"{graph}",
                    public_message=f"model {ref} does not match its manifest",
                )

    compare("input", manifest.inputs, session.get_inputs())
    compare("output", manifest.outputs, session.get_outputs())


def _text_feeds(manifest: ModelManifest, session: ort.InferenceSession) -> TextFeeds | None:
    """The tokenizer a text model's file carries; None for other models. A text model
    published before tokenizers were embedded takes token ids only: its feeds say so."""
    text = text_input(manifest)
    if text is None:
        return None
    # The tokenizers' modules (~2 ms of a start) for text models only.
    from functions.runtime import hf_tokenizer
    from functions.runtime.tokenizer import METADATA_KEY, TokenizerError, Vocabulary

    metadata = session.get_modelmeta().custom_metadata_map
    if manifest.preprocessing.get("tokenizer") == hf_tokenizer.KIND:
        return hf_text_feeds(manifest, text, metadata.get(hf_tokenizer.METADATA_KEY))
    raw = metadata.get(METADATA_KEY)
    ref = f"{manifest.name}:{manifest.version}"
    if raw is None:
        return TextFeeds(text, None, ref)
    try:
        vocabulary = Vocabulary.from_json(raw)
    except TokenizerError as exc:
        raise ModelUnavailable(
            f"{ref}: its tokenizer cannot be read: {exc}",
            public_message=f"model {ref} has a broken tokenizer and is not served",
        ) from exc
    size = manifest.preprocessing.get("vocab_size", len(vocabulary.tokens))
    if size != len(vocabulary.tokens) or vocabulary.max_length != text.max_length:
        raise ModelUnavailable(
            f"{ref}: its tokenizer ({len(vocabulary.tokens)} tokens, max_length "
            f"{vocabulary.max_length}) does not match its manifest ({size}, {text.max_length})",
            public_message=f"model {ref} does not match its manifest",
        )
    return TextFeeds(text, vocabulary, ref)


def hf_text_feeds(manifest: ModelManifest, text: TextInput, document: str | None) -> TextFeeds:
    """The Hugging Face tokenizer a model published with `--tokenizer` carries in its file."""
    from functions.runtime import hf_tokenizer

    ref = f"{manifest.name}:{manifest.version}"
    if document is None:
        raise ModelUnavailable(
            f"{ref}: its manifest names a Hugging Face tokenizer but its file carries none",
            public_message=f"model {ref} does not match its manifest",
        )
    spec = manifest.input(text.input)
    width = spec.shape[1] if spec is not None and spec.rank == 2 and spec.shape[1] > 0 else None
    inputs = hf_tokenizer.HfInputs.from_preprocessing(manifest.preprocessing, text.input)
    # Publish records the padding it checked the model on; a manifest without it was published
    # when serving right-padded whatever the file said, and its model was checked on that only.
    own_padding = "padding" in manifest.preprocessing
    # A fixed length in the file pads to the batch's longest only where publish saw the model
    # answer the same both ways (manifests before 2026-12-02's second change pad to the length).
    to_longest = bool(manifest.preprocessing.get("pad_to_longest"))
    try:
        tokenizer = hf_tokenizer.HfTokenizer(
            document, text.max_length, inputs, width, own_padding, to_longest
        )
    except hf_tokenizer.HfTokenizerError as exc:
        raise ModelUnavailable(
            f"{ref}: {exc}", public_message=f"model {ref} cannot load its tokenizer here"
        ) from exc
    return TextFeeds(text, tokenizer, ref)


def _session(
    manifest: ModelManifest, source: ModelSource, threads: int | None
) -> ort.InferenceSession:
    """The session for a model on disk (external data found beside it) or in memory."""
    _refuse_unlisted_data(manifest, source)
    if not isinstance(source, Path):
        _refuse_nested_in_memory(manifest, source)
    options = session_options(manifest.weight_bytes, threads)
    try:
        if isinstance(source, Path):
            return _file_session(source, options)
        names = list(source.weights)
        if names:
            options.add_external_initializers_from_files_in_memory(
                names, [source.weights[n] for n in names], [len(source.weights[n]) for n in names]
            )
        try:
            return ort.InferenceSession(
                source.model, sess_options=options, providers=["CPUExecutionProvider"]
            )
        finally:
            source.release()  # onnxruntime copied what it needs: the buffers go now
    except Exception as exc:  # onnxruntime raises its own untyped errors
        ref = f"{manifest.name}:{manifest.version}"
        from functions.runtime.load_errors import load_refusal  # only when a load fails

        where = source if isinstance(source, Path) else "it"
        raise ModelUnavailable(
            f"{ref}: onnxruntime cannot load {where}: {load_refusal(str(exc))}",
            public_message=f"model {ref} cannot be loaded",
        ) from exc


def _refuse_unlisted_data(manifest: ModelManifest, source: ModelSource) -> None:
    """A model naming external data its manifest does not list is not loaded: onnxruntime
    would read that name from the cache folder or, from memory, the working directory."""
    ref = f"{manifest.name}:{manifest.version}"
    model = source if isinstance(source, Path) else source.model
    try:
        unlisted = unlisted_external_data(model, (f.path for f in manifest.weight_files))
    except AiaasError as exc:
        raise ModelUnavailable(
            f"{ref}: {exc.message}", public_message=f"model {ref} cannot be loaded"
        ) from None
    if unlisted:
        if not isinstance(source, Path):
            source.release()
        raise ModelUnavailable(
            f"{ref}: its model names external data {unlisted[0]!r}, not listed in its "
            "manifest's files; refused (publish the model with `aiaas publish`)",
            public_message=f"model {ref} cannot be loaded",
        )


def _refuse_nested_in_memory(manifest: ModelManifest, source: ModelInMemory) -> None:
    """From memory onnxruntime takes the main graph's external weights from the buffers given,
    but reads a subgraph's (an If or Loop branch's) from a file in the working directory: its
    bytes answered as weights (a planted file), or the load failed. Such a model loads from the
    cache directory only."""
    nested = nested_external_data(source.model)
    if not nested:
        return
    source.release()
    ref = f"{manifest.name}:{manifest.version}"
    raise ModelUnavailable(
        f"{ref}: a subgraph of it keeps weights in {nested[0]!r}, which onnxruntime reads from "
        "a file, not from memory; serve it from the cache directory (AIAAS_MODEL_LOAD=disk, "
        f"AIAAS_CACHE_DIR with room for its {manifest.weight_bytes} bytes)",
        public_message=f"model {ref} cannot be loaded from memory here",
    )


def _file_session(path: Path, options: ort.SessionOptions) -> ort.InferenceSession:
    """A big single file loads through a graph file mapping its weights from it (~1x its bytes
    at peak, not ~2x: mapped_weights.py)."""
    with mapped_weights.loadable(path) as graph:
        return mapped_weights.inference_session(path, graph, options)


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
        self.session = _session(manifest, path, threads)
        source = path if isinstance(path, Path) else path.model
        self.encoders = CategoryEncoders(source)  # which value an encoder refused (on a refusal)
        self.cost = input_cost.InputCost(source)  # read when `aiaas serve` asks
        _check_graph(manifest, self.session)
        # Text models: raw strings in, tokenized here (None: numeric models pay one check).
        self.text = _text_feeds(manifest, self.session)
        self.output_names = [spec.name for spec in manifest.outputs]
        # Moving average of the time in session.run, where onnxruntime holds no GIL, so a server
        # can tell a model worth running off its event loop from a cheap one. One call in
        # TIMED_EVERY is timed: the clock costs more than a small model's share of a request.
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
        self._session_run = _session_runner(self.session)
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
        if out_of_memory(exc):  # was a bare 500 "internal error"
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
            if self._calls % TIMED_EVERY:
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


def _session_runner(session: ort.InferenceSession) -> Any:
    """`run(output_names, feeds, run_options)` of the session's C++ object, without the Python
    wrapper of `InferenceSession.run` (~3 us a call in `aiaas serve`, a tenth of a small
    model's request): it checks the feed names (`validate_inputs` has) and retries on another
    execution provider when one fails (only the CPU one is used). The wrapper where its
    layout differs (another onnxruntime version)."""
    raw = getattr(session, "_sess", None)
    if raw is not None and callable(getattr(raw, "run", None)):
        return raw.run
    return lambda names, feeds, options: session.run(names, feeds, options)


def _short(exc: Exception) -> str:
    text = str(exc).split("] ", 1)[-1]
    return text[:300]
