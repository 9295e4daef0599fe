"""Opening a model version's onnxruntime session: threads matched to its size, external data
checked against its manifest, from a file (its weights mapped) or from memory; the graph's
inputs and outputs checked against the manifest; the session's raw `run`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnxruntime as ort

from functions.runtime import mapped_weights
from functions.runtime.artifact_files import nested_external_data, unlisted_external_data
from functions.runtime.dtypes import BY_NAME, zipmap_type
from functions.runtime.errors import AiaasError, ModelUnavailable
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.model_in_memory import ModelInMemory, ModelSource
from functions.runtime.tensor_spec import batch_fixed_at


def cpu_count() -> int:
    """CPUs this process may use (Lambda gives vCPUs in proportion to memory)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


# Below this size a model is cheap per row: one request runs fastest on the calling thread, and
# concurrency comes from serving more requests at once, not from splitting one across cores.
SMALL_MODEL_BYTES = 8 * 1024 * 1024


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


def check_graph(manifest: ModelManifest, session: ort.InferenceSession) -> None:
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
    _scores_of_one_input(manifest, ref, session)


def _scores_of_one_input(manifest: ModelManifest, ref: str, session: ort.InferenceSession) -> None:
    """A 503 for a classifier whose scores output is the [classes] scores of one input with no
    batch axis (a GRU exported on one window, [steps, 12] -> [2]), which publish refuses since
    2026-12-07: a version published before was answered as one score a row, two predictions
    of the wrong class for one window. A batch fixed at that size (one logit a row) is not;
    one window of exactly 2 steps ([2, 12] -> [2]) has its shapes, and is told apart as publish
    tells it (since 2026-12-07): its answers to 2 rows do not swap when the rows do."""
    post = manifest.postprocessing
    spec = next((o for o in manifest.outputs if post and o.name == post.scores_output), None)
    classes = len(manifest.labels)
    if spec is None or classes < 2 or spec.shape != (classes,):
        return
    if batch_fixed_at(manifest.inputs, classes):
        # imported for this shape only: the predict path of every other model stays as it was
        from functions.runtime.rows_swapped import rows_apart

        if classes != 2 or rows_apart(session, manifest.inputs, manifest.outputs) is not False:
            return
    raise ModelUnavailable(
        f"{ref}: scores output {spec.name} {list(spec.shape)} has no batch axis",
        public_message=(
            f"model {ref} answers the {classes} class scores of one input with no batch axis "
            f"(output '{spec.name}' {list(spec.shape)}), which would be read as one score a "
            "row: publish the model exported with a batch axis (torch: the example input as "
            "x.unsqueeze(0), with a dynamic batch axis)"
        ),
    )


def open_session(
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


def session_runner(session: ort.InferenceSession) -> Any:
    """`run(output_names, feeds, run_options)` of the session's C++ object, without the Python
    wrapper of `InferenceSession.run` (~3 us a call in `aiaas serve`, a tenth of a small
    model's request): it checks the feed names (`validate_inputs` has) and retries on another
    execution provider when one fails (only the CPU one is used). The wrapper where its
    layout differs (another onnxruntime version)."""
    raw = getattr(session, "_sess", None)
    if raw is not None and callable(getattr(raw, "run", None)):
        return raw.run
    return lambda names, feeds, options: session.run(names, feeds, options)
