"""What an exported classifier's graph says about its classes, read at publish time.

Exporters of classical models (skl2onnx, onnxmltools) keep the class labels in the graph: on a
ZipMap (`classlabels_strings` / `classlabels_int64s`), on the ai.onnx.ml classifier operators
(LinearClassifier, TreeEnsembleClassifier, SVMClassifier: `classlabels_*`), or as a constant the
label output is picked from (ArgMax -> ArrayFeatureExtractor, as for MLPClassifier). Beside the
label they output the model's own probabilities, which must not get another softmax. An output
of an ai.onnx.ml regressor operator makes the task `regression` when `--task` does not say.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

# Nodes that pass a value through unchanged for our purposes (type, shape or name only).
PASS_THROUGH = frozenset({"Identity", "Cast", "Reshape", "Flatten", "Squeeze", "Unsqueeze"})
# Nodes whose output is a probability distribution per row (Sigmoid: per class, or a binary
# classifier's positive class).
PROBABILITY_OPS = frozenset({"Softmax", "Normalizer", "ZipMap", "Sigmoid"})
# Nodes that keep probabilities probabilities when every input not a constant is one: a clamp,
# an ensemble's average, one class's column taken, the mean of several softmaxes.
KEEP_PROBABILITY = frozenset(
    {"Clip", "Min", "Max", "Add", "Mul", "Div", "Mean", "Sum", "Slice", "Gather", "Split"}
)
# Nodes that pick each row's label out of a constant list of classes by index.
PICK_OPS = frozenset({"ArrayFeatureExtractor", "Gather"})
CLASS_ATTRIBUTES = ("classlabels_strings", "classlabels_int64s", "classlabels_ints")
# Classifier operators whose scores are decision values, not probabilities, when they apply no
# post_transform (skl2onnx's LinearSVC, RidgeClassifier, SVC without probability=True).
DECISION_OPS = frozenset({"LinearClassifier", "SVMClassifier"})
LINEAR_OPS = frozenset({"MatMul", "Gemm"})  # scores computed as x @ w (+ b), nothing after
# Nodes after which decision values are no longer what a row answers: a probability operator,
# or an Exp (skl2onnx writes CalibratedClassifierCV's Platt sigmoid out as Mul, Exp, Add, Div).
TRANSFORM_OPS = (PROBABILITY_OPS - {"ZipMap"}) | {"Exp"}
# The ai.onnx.ml regressor operators (skl2onnx's and onnxmltools' linear, tree, boosted and SVM
# regressors): an output computed by one is a regression's values.
REGRESSOR_OPS = frozenset({"LinearRegressor", "TreeEnsembleRegressor", "SVMRegressor"})
INT64, STRING = 7, 8  # onnx.TensorProto element types of a label output

Keys = tuple[int, ...] | tuple[str, ...]


@dataclass(frozen=True)
class GraphClasses:
    """Class labels and the outputs that hold labels or probabilities, as the graph says."""

    labels: tuple[str, ...] = ()  # in the order of the scores' columns
    zipmap_keys: Mapping[str, Keys] = field(default_factory=dict)  # ZipMap output -> its keys
    label_outputs: frozenset[str] = frozenset()  # int64 / string outputs: one class per row
    probability_outputs: frozenset[str] = frozenset()  # outputs already holding probabilities
    decision_outputs: frozenset[str] = frozenset()  # scores that are decision values
    regression_outputs: frozenset[str] = frozenset()  # values of an ai.onnx.ml regressor
    # probabilities an SVMClassifier makes by Platt scaling (SVC(probability=True)): their
    # largest can name another class than the SVM's own label output
    platt_outputs: frozenset[str] = frozenset()
    # outputs an ArgMin makes: the index of the lowest value (KMeans's cluster of the nearest
    # centre), so the values it picks from are best lowest, not class scores
    argmin_outputs: frozenset[str] = frozenset()
    read: bool = True  # False when the graph could not be read (no onnx package): nothing known


def _class_values(node: onnx.NodeProto) -> Keys:
    for attribute in node.attribute:
        if attribute.name not in CLASS_ATTRIBUTES:
            continue
        if attribute.strings:
            return tuple(value.decode("utf-8") for value in attribute.strings)
        if attribute.ints:
            return tuple(int(value) for value in attribute.ints)
    return ()


MAX_CLASSES = 1_000_000  # longer initializers are weights, not a class list


def _constants(graph: onnx.GraphProto) -> dict[str, list[object]]:
    import onnx
    from onnx import numpy_helper

    def small(t: onnx.TensorProto) -> bool:
        return t.data_location != onnx.TensorProto.EXTERNAL and math.prod(t.dims) <= MAX_CLASSES

    # Class lists are small: weights (external, or millions of values) are never read as lists,
    # whether initializers or Constant nodes (a 64 MB one took publish to 0.96 GB; one kept in
    # external data was read from the working directory, and failed with a traceback).
    found = {
        t.name: numpy_helper.to_array(t).ravel().tolist() for t in graph.initializer if small(t)
    }
    for node in graph.node:
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        if node.op_type == "Constant" and value is not None and small(value):
            found[node.output[0]] = numpy_helper.to_array(value).ravel().tolist()
    return found


def _source(
    name: str, producers: Mapping[str, onnx.NodeProto]
) -> tuple[onnx.NodeProto | None, str]:
    """The node that computes `name`, looking through pass-through nodes, and its output name."""
    node = producers.get(name)
    while node is not None and node.op_type in PASS_THROUGH and node.input:
        name = node.input[0]
        node = producers.get(name)
    return node, name


def _as_text(values: list[object]) -> tuple[str, ...]:
    return tuple(v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values)


def read_classes(graph: onnx.GraphProto) -> GraphClasses:
    """The classes, ZipMap keys, label outputs and probability outputs of `graph`, and the
    outputs of a regressor operator."""
    producers = {out: node for node in graph.node for out in node.output}
    constants = _constants(graph)
    zipmaps: dict[str, Keys] = {}
    label_outputs: set[str] = set()
    probabilities: set[str] = set()
    picked: tuple[str, ...] = ()
    regression: set[str] = set()
    for output in graph.output:
        node, reached = _source(output.name, producers)
        if node is None:
            continue
        if node.op_type in REGRESSOR_OPS or _inverse_link(node, producers):
            regression.add(output.name)
        elif node.op_type == "Concat" and _regressors(node, producers):
            regression.add(output.name)  # a MultiOutputRegressor's targets side by side
        if _probability(output.name, producers, constants):
            probabilities.add(output.name)
        if node.op_type == "ZipMap" and _class_values(node):
            zipmaps[output.name] = _class_values(node)
        if output.type.tensor_type.elem_type not in (INT64, STRING):
            continue
        if _class_values(node) and reached == node.output[0]:
            label_outputs.add(output.name)  # a classifier operator's label output
        elif node.op_type in PICK_OPS and node.input[0] in constants:
            label_outputs.add(output.name)
            picked = picked or _as_text(constants[node.input[0]])
    if regression and _outlier_labels(graph, producers):
        regression.clear()
    decisions = {
        o.name for o in graph.output if o.name not in label_outputs and _decision(o.name, producers)
    }
    return GraphClasses(
        labels=_labels(graph, zipmaps) or picked,
        zipmap_keys=zipmaps,
        label_outputs=frozenset(label_outputs),
        probability_outputs=frozenset(probabilities - decisions),
        decision_outputs=frozenset(decisions),
        regression_outputs=frozenset(regression),
        platt_outputs=frozenset(
            o.name
            for o in graph.output
            if o.name not in label_outputs and _reaches(o.name, producers, _platt)
        ),
        argmin_outputs=frozenset(
            o.name
            for o in graph.output
            if o.name in producers and producers[o.name].op_type == "ArgMin"
        ),
    )


def _regressors(node: onnx.NodeProto, producers: Mapping[str, onnx.NodeProto]) -> bool:
    """Whether every input of `node` is a regressor operator's values (through pass-through
    nodes): skl2onnx's MultiOutputRegressor concatenates one TreeEnsembleRegressor a target,
    published as task other with a note offering --labels for its "2 class scores"."""
    sources = [_source(name, producers)[0] for name in node.input]
    return bool(sources) and all(s is not None and s.op_type in REGRESSOR_OPS for s in sources)


def _probability(
    name: str,
    producers: Mapping[str, onnx.NodeProto],
    constants: Mapping[str, object],
    depth: int = 0,
) -> bool:
    """Whether `name` holds probabilities: a probability operator's output, or one reached from
    such outputs only through nodes that keep them so (`softmax(z).clamp(1e-6, 1)`,
    `softmax(z)[:, 1:2]`, `(softmax(a) + softmax(b)) / 2`, `log_softmax(z).exp()`). Read as
    logits, they were given a second softmax or sigmoid: every binary row answered positive."""
    node, _ = _source(name, producers)
    if node is None or depth > 32:
        return False
    if node.op_type in PROBABILITY_OPS:
        return True
    if node.op_type == "Exp" and node.input:
        source, _ = _source(node.input[0], producers)
        return source is not None and source.op_type == "LogSoftmax"
    if node.op_type not in KEEP_PROBABILITY:
        return False
    data = node.input[:1] if node.op_type in ("Slice", "Gather", "Split", "Clip") else node.input
    varying = [i for i in data if i and i not in constants]
    return bool(varying) and all(_probability(i, producers, constants, depth + 1) for i in varying)


def _outlier_labels(graph: onnx.GraphProto, producers: Mapping[str, onnx.NodeProto]) -> bool:
    """An int label output that is the Sign of a score: skl2onnx's OneClassSVM (an SVMRegressor
    beside it, yet no regression: R2 and RMSE on its card meant nothing), as IsolationForest."""
    for output in graph.output:
        if output.type.tensor_type.elem_type != INT64:
            continue
        node, _ = _source(output.name, producers)
        if node is not None and node.op_type == "Sign":
            return True
    return False


def _inverse_link(node: onnx.NodeProto, producers: Mapping[str, onnx.NodeProto]) -> bool:
    """An Exp of a regressor operator's values: a log-link regression's answer (LightGBM's and
    XGBoost's Poisson, Gamma and Tweedie objectives, through onnxmltools), published as task
    `other` before, so `--data` gave no R2 or RMSE."""
    if node.op_type != "Exp" or not node.input:
        return False
    source, _ = _source(node.input[0], producers)
    return source is not None and source.op_type in REGRESSOR_OPS


def _platt(node: onnx.NodeProto) -> bool:
    return node.op_type == "SVMClassifier" and any(a.name == "prob_a" for a in node.attribute)


def _reaches(
    output: str,
    producers: Mapping[str, onnx.NodeProto],
    wanted: Callable[[onnx.NodeProto], bool],
) -> bool:
    """Whether a node `wanted` says yes to computes part of `output`."""
    seen, todo = set(), [output]
    while todo:
        node = producers.get(todo.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if wanted(node):
            return True
        todo.extend(node.input)
    return False


def _decision(output: str, producers: Mapping[str, onnx.NodeProto]) -> bool:
    """Whether `output` comes from a classifier operator's decision values (no post_transform,
    no Platt scaling) with nothing on the way that makes probabilities of them."""
    seen, todo, found = set(), [output], False
    while todo:
        node = producers.get(todo.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.op_type in TRANSFORM_OPS:
            return False
        if node.op_type in DECISION_OPS:
            attributes = {a.name: a for a in node.attribute}
            transform = attributes.get("post_transform")
            plain = transform is None or transform.s in (b"", b"NONE")
            found = found or (plain and "prob_a" not in attributes)
            continue
        if node.op_type.endswith("Classifier"):  # a tree's probabilities: what feeds it aside
            continue
        if node.op_type in LINEAR_OPS:  # x @ w + b into a ZipMap: skl2onnx's SGDClassifier
            found = True  # with a margin loss (hinge), and Perceptron, answer decision values
            continue
        todo.extend(node.input)
    return found


def _labels(graph: onnx.GraphProto, zipmaps: Mapping[str, Keys]) -> tuple[str, ...]:
    """A ZipMap's keys, else the first classifier operator's class labels."""
    for keys in zipmaps.values():
        return tuple(str(k) for k in keys)
    for node in graph.node:
        values = _class_values(node)
        if values and node.op_type != "ZipMap":
            return tuple(str(v) for v in values)
    return ()
