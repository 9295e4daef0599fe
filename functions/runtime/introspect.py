"""Reading an ONNX file's signature, for publishing models this project did not train.

Publish-time only: uses onnxruntime for the graph's inputs and outputs and, when the `onnx`
package is installed, the file's opset and producer and what the graph says about its classes
(`functions.runtime.graph_classes`), which a ZipMap output cannot be served without.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from functions.runtime import mapped_weights
from functions.runtime.artifact_files import files_to_publish
from functions.runtime.batch_reduced import batch_of_one
from functions.runtime.errors import BadRequest
from functions.runtime.file_digests import DigestsAside
from functions.runtime.file_hashes import sha256_file
from functions.runtime.graph_classes import MAX_CLASSES, PICK_OPS, GraphClasses, read_classes
from functions.runtime.graph_specs import input_free_outputs, input_specs, output_spec
from functions.runtime.imputed_inputs import imputed_inputs
from functions.runtime.index_inputs import index_rows
from functions.runtime.load_errors import load_refusal
from functions.runtime.manifest import ModelFile, TensorSpec
from functions.runtime.missing_category_inputs import missing_category_inputs
from functions.runtime.probe_outputs import (
    LENGTH,
    as_answered,
    as_dynamic,
    may_answer_otherwise,
    probe_run,
    probe_unread,
)
from functions.runtime.rows_swapped import rows_apart
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import MULTIPART_THRESHOLD
from functions.runtime.tree_inputs import one_way_tree_inputs, tree_inputs

if TYPE_CHECKING:
    import onnx


@dataclass(frozen=True)
class OnnxSignature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    file: ModelFile
    classes: GraphClasses = field(default_factory=lambda: GraphClasses(read=False))
    # What the outputs answered made-up rows (probe_outputs.py): a graph of ai.onnx.ml operators
    # only, or any graph not read (no onnx package), and None where it refused them.
    probe: Mapping[str, np.ndarray] | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)  # the file's metadata_props
    imputed: tuple[str, ...] = ()  # float inputs taking missing values: the graph imputes them
    routed: tuple[str, ...] = ()  # ... its trees route them as learnt (XGBoost, LightGBM)
    one_way: tuple[str, ...] = ()  # non-finite taken (the flag), trees sending NaN one way
    # Every input fixed at 2 rows and an output at [2]: whether swapping the rows swaps the
    # answers (a batch of 2), not (one window of 2 steps); None for any other shape.
    rows_apart: bool | None = None


def _load_proto(path: Path, graph: Path) -> onnx.ModelProto | None:
    try:
        import onnx
    except ImportError:
        return None
    proto = onnx.load(str(graph), load_external_data=False)
    if graph != path:
        _inline_class_lists(proto, path)
    return proto


def _inline_class_lists(proto: onnx.ModelProto, path: Path) -> None:
    """Read back from `path` the few initializers the graph file mapped that a label may be
    picked from: read_classes reads those (a 1,000-class list is 8 KB), never the weights."""
    from onnx import TensorProto

    picked = {node.input[0] for node in proto.graph.node if node.op_type in PICK_OPS and node.input}
    with path.open("rb") as handle:
        for tensor in proto.graph.initializer:
            if (
                tensor.name not in picked
                or tensor.data_location != TensorProto.EXTERNAL
                or math.prod(tensor.dims) > MAX_CLASSES
            ):
                continue
            where = {entry.key: entry.value for entry in tensor.external_data}
            handle.seek(int(where["offset"]))
            tensor.raw_data = handle.read(int(where["length"]))
            tensor.data_location = TensorProto.DEFAULT
            del tensor.external_data[:]


def _bfloat16_hint(path: Path, graph: Path, error: str) -> str:
    """For a model exported after `model.bfloat16()` (onnxruntime's CPU kernels run few ops in
    bfloat16, and say only that a node has no implementation): what to export instead."""
    if "NOT_IMPLEMENTED" not in error:
        return ""
    try:
        proto = _load_proto(path, graph)
    except Exception:  # the hint is optional: onnxruntime's error stands without it
        return ""
    if proto is None:
        return ""
    from onnx import TensorProto

    tensors = [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]
    types = {t.type.tensor_type.elem_type for t in tensors}
    types |= {t.data_type for t in proto.graph.initializer}
    if TensorProto.BFLOAT16 not in types:
        return ""
    return (
        "; the graph computes in bfloat16, which onnxruntime does not run on a CPU: export "
        "the model in float32 (model.float()) or float16 (model.half())"
    )


def _double_hint(path: Path, graph: Path, error: str) -> str:
    """For a scikit-learn model exported from a pandas DataFrame of float64 columns: skl2onnx
    makes them double inputs, which onnxruntime's ZipMap and Imputer (ai.onnx.ml) refuse, so
    its default export of such a frame does not load."""
    if "double" not in error and "NOT_IMPLEMENTED" not in error:
        return ""
    try:
        proto = _load_proto(path, graph)
    except Exception:  # the hint is optional: onnxruntime's error stands without it
        return ""
    from onnx import TensorProto

    if proto is None or not any(
        i.type.tensor_type.elem_type == TensorProto.DOUBLE for i in proto.graph.input
    ):
        return ""
    return (
        "; the model takes double (float64) inputs, as skl2onnx exports a float64 sample (a "
        "numpy array's default, or a pandas DataFrame's float64 columns), and onnxruntime runs "
        "few ai.onnx.ml operators on doubles: export from float32: to_onnx(model, "
        "X[:1].astype(numpy.float32)), or for a DataFrame to_onnx(pipeline, "
        "frame[:1].astype({column: 'float32' for column in numeric_columns}))"
    )


def _refuse_empty_ends(path: Path, session: ort.InferenceSession) -> None:
    """A graph without inputs or outputs loads in onnxruntime, but no request can be answered
    by it: published, every request to it was a 503 "corrupt manifest"."""
    ends = (
        ("inputs", session.get_inputs(), "args"),
        ("outputs", session.get_outputs(), "output_names"),
    )
    for kind, args, torch_name in ends:
        if not args:
            raise BadRequest(
                f"{path} has no graph {kind}: aiaas answers a request's inputs with the "
                f"graph's outputs; export the model with its {kind} (torch.onnx.export's "
                f"{torch_name})"
            )


def checking_options() -> ort.SessionOptions:
    """A session publishing only reads (its signature) or runs a few times (a text model's smoke
    test): its weights are left where they are (mapped from the file) instead of repacked for
    fast matrix products. The repacking copied every weight: 2.4 GB of memory and 2.3 s for a
    2.5 GB external-data model, 25 MB and 0.01 s without (serving keeps it: it runs the model)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.add_session_config_entry("session.disable_prepacking", "1")
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Errors still raise, and are said once in publish's own error line; warnings (an output
    # answering another shape than it declares, which probe_outputs.py reads for itself) and
    # onnxruntime's own red error log line are not printed in the middle of publish's output.
    options.log_severity_level = 4
    return options


def _digests(path: Path, part_checksums: bool) -> DigestsAside:
    """The model's and its external data files' sha256, taken in a thread while onnxruntime
    loads the model. Files big enough to go up in parts are remembered, so the upload that
    follows need not read them through a hash again; with `part_checksums` (the store sends
    them: S3) the same read also takes their parts' CRC32s. Data files publishing would refuse
    (hidden, outside the model's folder) are left to it to refuse: not read here."""
    try:
        data = [local for local, _ in files_to_publish(path, {}).values()]
        big = [p for p in (path, *data) if p.stat().st_size >= MULTIPART_THRESHOLD]
    except (BadRequest, OSError):  # no file, or no ONNX model: for the signature to refuse
        big = []
    part = RuntimeSettings.from_env().transfer.part_bytes if part_checksums else None
    return DigestsAside(big, part)


def _model_bytes(path: Path) -> int:
    """The bytes of the model at `path` and its external data files."""
    try:
        data = [local for local, _ in files_to_publish(path, {}).values()]
    except (BadRequest, OSError):  # refused by publishing later; the graph file counts here
        data = []
    return sum(p.stat().st_size for p in (path, *data) if p.is_file())


def read_signature(
    path: Path, *, finite_inputs: bool = True, part_checksums: bool = True
) -> OnnxSignature:
    """Inputs, outputs, classes, opset, producer, size and sha256 of the ONNX file at `path`.
    `part_checksums`: whether the store it goes to takes multipart CRC32s
    (`ObjectStore.takes_part_checksums`)."""
    digests = _digests(path, part_checksums)
    try:
        signature = _read_signature(path, finite_inputs, digests)
    except BaseException:
        digests.stop()
        raise
    digests.wait()  # the data files' digests too, remembered for the upload
    return signature


def _read_signature(path: Path, finite_inputs: bool, digests: DigestsAside) -> OnnxSignature:
    # A big single file is read through a graph file mapping its weights (as serving loads
    # it): onnxruntime and onnx.load then parse the structure, not a copy of every weight.
    with mapped_weights.loadable(path) as graph:
        try:
            session = mapped_weights.inference_session(path, graph, checking_options())
        except Exception as exc:
            raise BadRequest(
                f"{path} is not an ONNX model onnxruntime can load: {load_refusal(str(exc))}"
                + (_bfloat16_hint(path, graph, str(exc)) or _double_hint(path, graph, str(exc)))
            ) from exc
        proto = _load_proto(path, graph)
    _refuse_empty_ends(path, session)
    producer = session.get_modelmeta().producer_name or "unknown"
    opset = 0
    classes = None
    imputed: tuple[str, ...] = ()  # found in the graph: NaN taken, infinity still refused
    routed: tuple[str, ...] = ()
    flagged: tuple[str, ...] = ()
    if proto is not None:
        opset = max(
            (o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0
        )
        version = (proto.producer_version.strip().splitlines() or [""])[0].strip()
        if version:  # CatBoost's is a 10-line git banner: its first line says the release
            producer = f"{producer} {version}"
        classes = read_classes(proto.graph)
    inputs = input_specs(session.get_inputs(), finite=finite_inputs)
    if proto is not None:
        _refuse_unknown_rank(proto, inputs)
        tables = index_rows(proto.graph)
        inputs = tuple(
            replace(spec, index_rows=tables[spec.name])
            if spec.name in tables and spec.dtype.startswith(("int", "uint"))
            else spec
            for spec in inputs
        )
        inputs = missing_category_inputs(proto, inputs)
        found = imputed_inputs(proto.graph)
        imputed = tuple(s.name for s in inputs if s.finite and s.name in found)
        trees = tree_inputs(proto.graph) - found
        routed = tuple(s.name for s in inputs if s.finite and s.name in trees)
        inputs = tuple(
            replace(s, gaps=True) if s.name in {*imputed, *routed} else s for s in inputs
        )
        one_way = one_way_tree_inputs(proto.graph, producer) - found
        flagged = tuple(
            s.name
            for s in inputs
            if s.dtype.startswith("float") and not s.finite and s.name in one_way
        )
    batched = all(spec.shape[:1] == (-1,) for spec in inputs)
    constant = input_free_outputs(proto.graph) if proto is not None else frozenset[str]()
    outputs = tuple(
        output_spec(arg, classes, batched=batched and arg.name not in constant)
        for arg in session.get_outputs()
    )
    outputs = batch_of_one(session, proto, inputs, outputs)
    probe = None
    if proto is not None and any(node.domain == "ai.onnx.ml" for node in proto.graph.node):
        probe = probe_run(session, inputs, outputs)
        outputs = outputs if probe is None else as_answered(outputs, probe)
    elif proto is not None and may_answer_otherwise(proto, inputs, outputs):
        answered = probe_run(session, inputs, outputs, rows=2, length=LENGTH)
        outputs = outputs if answered is None else as_dynamic(outputs, answered)
    elif proto is None:  # its answers are all that says what its outputs hold
        probe = probe_unread(session, inputs, outputs, _model_bytes(path))
    return OnnxSignature(
        inputs=inputs,
        outputs=outputs,
        file=ModelFile(
            sha256=digests.sha256(path) if path in digests.paths else sha256_file(path),
            size=path.stat().st_size,
            opset=opset,
            producer=producer,
        ),
        classes=classes or GraphClasses(read=False),
        probe=probe,
        metadata=dict(session.get_modelmeta().custom_metadata_map),
        imputed=imputed,
        routed=routed,
        one_way=flagged,
        rows_apart=rows_apart(session, inputs, outputs),
    )


def _refuse_unknown_rank(proto: onnx.ModelProto, inputs: tuple[TensorSpec, ...]) -> None:
    """An input whose graph type has no shape at all: onnxruntime reports its shape as [], a
    scalar's, so it was published as one and every request of another rank was a 422 (onnx's
    checker refuses such a graph input too)."""
    names = {spec.name for spec in inputs}
    for value in proto.graph.input:
        tensor = value.type.tensor_type
        if (
            value.name in names
            and value.type.HasField("tensor_type")
            and not tensor.HasField("shape")
        ):
            raise BadRequest(
                f"input '{value.name}' has no shape in the graph (its rank is unknown), and aiaas "
                "checks each request against an input's shape: export the model with its inputs' "
                "shapes (a sample input of the right rank, dynamic axes named), or set them with "
                "onnx.tools.update_model_dims.update_inputs_outputs_dims"
            )
