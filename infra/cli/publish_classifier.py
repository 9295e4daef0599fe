"""`aiaas publish` for classifiers: labels, scores output and activation from the options given,
else from what the graph says (`functions.runtime.graph_classes`), checked against each other.

Defaults: the scores are the ZipMap output, else the float output with one column per class
(of several such, the one a final Softmax makes, else the user is asked which), never an
int64 / string label output; the labels are the graph's classes; the activation is
"none" when the exporter outputs probabilities (classical exporters, a final Softmax), else
"softmax" (a network's logits). A label list must have one label per class. One score a row is
a binary classifier's positive (second) class: a probability when the graph makes one (a final
Sigmoid), else a logit or decision value (sklearn's LinearSVC, RidgeClassifier), given a sigmoid,
so that a positive value is the second class, as the model's own label output says. One
output per class (skl2onnx's zipmap='columns') is refused with the export option to use instead:
any one of them read as the scores answered the wrong class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from functions.runtime.errors import BadRequest
from functions.runtime.graph_classes import GraphClasses
from functions.runtime.manifest import Postprocessing, TensorSpec
from infra.cli.publish_score_shapes import batch_first as _batch_first
from infra.cli.publish_score_shapes import one_a_row as _one_a_row
from infra.cli.publish_score_shapes import one_score_for_many as _one_score_for_many
from infra.cli.unread_activation import unread_activation, unread_note

if TYPE_CHECKING:
    import numpy as np

LABEL_DTYPES = ("int64", "int32", "string")


@dataclass(frozen=True)
class ClassifierOptions:
    """What the user asked for; None / () where the graph decides."""

    labels: tuple[str, ...] = ()
    scores_output: str | None = None
    label_output: str | None = None
    activation: str | None = None


@dataclass(frozen=True)
class ClassifierSetup:
    labels: tuple[str, ...]
    postprocessing: Postprocessing
    notes: tuple[str, ...]  # one line each, printed after publishing


def _output(outputs: tuple[TensorSpec, ...], name: str, option: str) -> TensorSpec:
    spec = next((o for o in outputs if o.name == name), None)
    if spec is None:
        raise BadRequest(
            f"{option} {name!r} is not an output of the model; it has {[o.name for o in outputs]}"
        )
    return spec


def _is_label_output(spec: TensorSpec) -> bool:
    return spec.dtype in LABEL_DTYPES and spec.rank <= 2 and spec.shape[1:] in ((), (1,))


def _width(spec: TensorSpec) -> int:
    """Scores per row, -1 when the graph leaves it dynamic; an output [N] holds one a row (a
    binary head's `fc(x).squeeze(-1)`: taken as several, it got a softmax, always 1). Every
    axis after the batch one counts, as serving flattens a row: [N, 2, 3] with 3 labels was
    published on its last axis, and then every row answered 6 scores for 3 classes."""
    if spec.rank == 1:
        return 1
    if spec.rank == 0 or any(dim < 0 for dim in spec.shape[1:]):
        return -1
    return math.prod(spec.shape[1:])


def _per_row(spec: TensorSpec) -> str:
    """How `_width` counted `spec`'s scores, for a refusal: its shape where it has several axes."""
    shape = ", ".join("N" if dim < 0 else str(dim) for dim in spec.shape)
    return f", [{shape}]: every axis after the batch one counts" if spec.rank > 2 else ""


def _default_scores(outputs: tuple[TensorSpec, ...], classes: int) -> TensorSpec | None:
    zipmaps = [o for o in outputs if o.map_keys]
    floats = [o for o in outputs if o.dtype.startswith("float") and not o.map_keys]
    fitting = [o for o in floats if _width(o) == classes]
    return next(iter(zipmaps or fitting or floats), None)


def _one_of_several(
    outputs: tuple[TensorSpec, ...], found: TensorSpec, classes: int, graph: GraphClasses
) -> TensorSpec:
    """`found`, unless other float outputs have one column per class too (a network's
    embedding of that width beside its logits): the first was taken, so an embedding's argmax
    answered as the class. One of them already probabilities (a final Softmax) is the one;
    else the user says which."""
    if found.map_keys or classes < 2:
        return found
    fitting = [o for o in outputs if o.dtype.startswith("float") and _width(o) == classes]
    if len(fitting) < 2:
        return found
    probabilities = [o for o in fitting if o.name in graph.probability_outputs]
    if len(probabilities) == 1:
        return probabilities[0]
    names = ", ".join(repr(o.name) for o in fitting)
    raise BadRequest(
        f"outputs {names} each have {classes} columns, one per class; say which holds the "
        f"class scores: --scores-output {fitting[-1].name} (and --activation none if it "
        "already holds probabilities)"
    )


def _one_output_per_class(outputs: tuple[TensorSpec, ...], classes: int) -> None:
    """Refuse one probability output per class beside a label output (skl2onnx's
    zipmap='columns': i0, i1, ...): read as a binary classifier's one score, any one of them
    answered the wrong class. A network's two one-score outputs (a logit and its probability)
    have no label output, and are not refused."""
    columns = [o.name for o in outputs if _one_a_row(o)]
    if len(columns) < 2 or len(columns) != classes:
        return
    raise BadRequest(
        f"outputs {', '.join(map(repr, columns))} each hold one class's probability (skl2onnx's "
        "zipmap='columns'); aiaas reads a classifier's scores from one output with a column per "
        "class: export with options={id(model): {'zipmap': False}} (or skl2onnx's default "
        "ZipMap), or publish with --task other to serve these outputs as they are"
    )


def _scores(
    outputs: tuple[TensorSpec, ...],
    options: ClassifierOptions,
    classes: int,
    graph: GraphClasses,
    inputs: tuple[TensorSpec, ...] = (),
    rows_apart: bool | None = None,
) -> TensorSpec:
    """The output of class scores."""
    # a label output as well: the classifiers of skl2onnx and onnxmltools have one
    labelled = any(o.name in graph.label_outputs for o in outputs)
    if options.scores_output is None:
        found = _default_scores(outputs, classes)
        if found is None:
            raise BadRequest(
                f"no output of the model holds class scores (float): it has "
                f"{[f'{o.name} ({o.dtype})' for o in outputs]}; publish it with --task other"
            )
        if labelled and not found.map_keys and _width(found) != classes:
            _one_output_per_class(outputs, classes)
        _one_score_for_many(found, classes, "output", inputs, rows_apart)
        return _batch_first(_one_of_several(outputs, found, classes, graph))
    spec = _output(outputs, options.scores_output, "--scores-output")
    if not spec.dtype.startswith("float"):
        default = _default_scores(outputs, classes)
        hint = f"this model's scores output is {default.name!r}" if default else "it has none"
        held = f"holds {spec.dtype} class labels" if _is_label_output(spec) else f"is {spec.dtype}"
        raise BadRequest(f"--scores-output {spec.name!r} {held}, not class scores; {hint}")
    _one_score_for_many(spec, classes, "--scores-output", inputs, rows_apart)
    return _batch_first(spec)


def _label_output(
    outputs: tuple[TensorSpec, ...], options: ClassifierOptions, graph: GraphClasses
) -> str | None:
    if options.label_output is None:
        return next((o.name for o in outputs if o.name in graph.label_outputs), None)
    spec = _output(outputs, options.label_output, "--label-output")
    if not _is_label_output(spec):
        raise BadRequest(
            f"--label-output {spec.name!r} is {spec.dtype} {list(spec.shape)}; a label output "
            "holds one int64 or string class per row"
        )
    return spec.name


def _labels(given: tuple[str, ...], graph: GraphClasses, scores: TensorSpec) -> tuple[str, ...]:
    if graph.labels:
        _fits_scores(scores, graph.labels)
        count, where = len(graph.labels), ", ".join(graph.labels)
    elif _width(scores) == 1:
        count, where = 2, f"output {scores.name!r} has one score per row: negative, positive"
    else:
        count = _width(scores)
        where = f"output {scores.name!r} has {count} scores per row{_per_row(scores)}"
    if not given:
        return graph.labels
    if count != -1 and len(given) != count:
        raise BadRequest(
            f"--labels lists {len(given)} labels but the model has {count} classes ({where}); "
            "give one label per class, in the model's order"
        )
    folded = [_folded(label) for label in given]
    own = [_folded(label) for label in graph.labels]
    if sorted(folded) == sorted(own) and folded != own:  # 'Low,Mid,High' for high, low, mid too
        raise BadRequest(
            f"--labels lists the model's classes in another order (the model's order is {where}); "
            "leave --labels out to use the model's own, or give your names in that order"
        )
    return given


def _fits_scores(scores: TensorSpec, labels: tuple[str, ...]) -> None:
    """Refuse the graph's classes where the scores output's rows can never hold one score each
    (one score a row is a binary classifier's two): published, predict refused every request."""
    width = _width(scores)
    if width == -1 or scores.map_keys or (2 if width == 1 else width) == len(labels):
        return
    raise BadRequest(
        f"the model has {len(labels)} classes ({', '.join(labels)}) but output {scores.name!r} "
        f"has {width} scores per row{_per_row(scores)}; pass --scores-output naming the output "
        "with one score per class, [N, classes]"
    )


def _folded(label: str) -> str:
    """A label as a comparison of names sees it: its case and surrounding spaces do not count."""
    return label.strip().casefold()


def _activation(
    options: ClassifierOptions,
    graph: GraphClasses,
    scores: TensorSpec,
    probe: Mapping[str, np.ndarray] | None,
) -> str:
    if options.activation == "softmax" and _width(scores) == 1:
        raise BadRequest(
            f"--activation softmax over one score a row (output {scores.name!r}) is always 1 (the "
            "first class every time); a binary classifier's one logit takes --activation sigmoid"
        )
    if options.activation is not None:
        return options.activation
    if not graph.read:  # no onnx package: what the scores answered made-up rows tells
        return unread_activation(scores, probe)
    if scores.name in graph.probability_outputs:
        return "none"
    if _width(scores) == 1:  # a softmax of one score is always 1: the first class every time
        return "sigmoid"
    return "none" if graph.labels else "softmax"


def classifier_setup(
    outputs: tuple[TensorSpec, ...],
    graph: GraphClasses,
    options: ClassifierOptions,
    probe: Mapping[str, np.ndarray] | None = None,
    inputs: tuple[TensorSpec, ...] = (),
    rows_apart: bool | None = None,
) -> ClassifierSetup:
    """Labels and postprocessing for a classifier, or a BadRequest saying what to fix. `probe`:
    the outputs' answers to made-up rows (`OnnxSignature.probe`); `inputs`: the model's;
    `rows_apart`: `OnnxSignature.rows_apart` (a batch fixed at 2, or one window of 2 steps)."""
    classes = len(graph.labels) or len(options.labels) or -1
    scores = _scores(outputs, options, classes, graph, inputs, rows_apart)
    _not_lowest_first(scores, graph)
    _binary_a_label(outputs, scores, graph)
    labels = _labels(options.labels, graph, scores)
    activation = _activation(options, graph, scores, probe)
    post = Postprocessing(scores.name, activation, _label_output(outputs, options, graph))
    notes = [_classes_note(labels, options.labels)] if labels else []
    notes.append(f"class scores from output {scores.name!r} (activation {activation})")
    if scores.name in graph.decision_outputs and activation == "none":
        notes.append(
            f"{scores.name!r} holds the model's decision values, not probabilities (the "
            "exporter's classifier applies no transform): each answer's label is the largest, "
            "and its score is that decision value"
        )
    if scores.name in graph.platt_outputs:
        label = f" {post.label_output!r}" if post.label_output else ""
        notes.append(
            f"{scores.name!r} holds Platt-scaled probabilities (SVC(probability=True)): each "
            f"answer's label is the most probable class, which near the boundary can differ "
            f"from the SVM's own label output{label}, as scikit-learn's predict() and "
            "predict_proba() differ there"
        )
    if not graph.read and options.activation is None:
        notes.append(unread_note(scores, activation))
    several = _several_labels(outputs, scores, len(labels))
    if several is not None:
        notes.append(several)
    return ClassifierSetup(labels, post, tuple(notes))


def _binary_a_label(
    outputs: tuple[TensorSpec, ...], scores: TensorSpec, graph: GraphClasses
) -> None:
    """Refuse, saying what it is, a multi-label model whose graph names the classes of one
    label (0, 1): skl2onnx's OneVsRestClassifier on a label matrix with zipmap False, which was
    told to pass --scores-output for its "2 classes" and "3 scores per row"."""
    width = _width(scores)
    several = _several_labels(outputs, scores, width)
    if several is None or width == len(graph.labels) or len(graph.labels) != 2:
        return
    raise BadRequest(
        f"output {scores.name!r} has {width} scores a row and a label output answers {width} "
        f"labels a row, where the graph names the classes {', '.join(graph.labels)} of each: a "
        "multi-label model (one 0/1 a label); publish it with --task other to serve its "
        "outputs as they are, or one model a label"
    )


def _several_labels(
    outputs: tuple[TensorSpec, ...], scores: TensorSpec, classes: int
) -> str | None:
    """A warning for a multi-label model (skl2onnx's MLPClassifier or OneVsRestClassifier fitted
    on a 0/1 label matrix): its own label output answers a 0/1 a class, several true at once,
    where each answer's label is one class, which the user read as the model's `predict`."""
    spec = next(
        (o for o in outputs if o is not scores and o.dtype in LABEL_DTYPES and o.rank == 2), None
    )
    if spec is None or spec.shape[1] < 2 or spec.shape[1] != classes:
        return None
    name = spec.name
    return (
        f"warning: output {name!r} answers {spec.shape[1]} labels a row (a multi-label model: "
        "several classes true at once), but each answer's label (predict's `predictions`, "
        "batch's pred_label, compare, explain, drift) is one class, the highest score's: read "
        f"{name!r} itself, which the outputs hold as the model answers it, or publish with "
        "--task other"
    )


CLASSES_SHOWN = 10  # publish's note names this many classes; the card and `aiaas show` all


def _classes_note(labels: tuple[str, ...], given: tuple[str, ...] = ()) -> str:
    """`classes a, b, c (read from the graph)`; past ten, the first ten and how many in all: a
    model of 100 classes printed them on one line of thousands of characters."""
    source = "from --labels" if given else "read from the graph"
    if len(labels) <= CLASSES_SHOWN:
        return f"classes {', '.join(labels)} ({source})"
    shown = ", ".join(labels[:CLASSES_SHOWN])
    return f"classes {shown}, ... ({len(labels)} in all, {source}; `aiaas show` lists them all)"


def _not_lowest_first(scores: TensorSpec, graph: GraphClasses) -> None:
    """A BadRequest where the graph's own label is an ArgMin: skl2onnx's KMeans answers its
    `label` as the nearest centre and `scores` as the distances, and served as class scores
    (highest first) every label was the farthest cluster (0 of 8 rows agreed)."""
    own = sorted(graph.argmin_outputs - {scores.name})
    if own:
        raise BadRequest(
            f"the model's own output {own[0]!r} is an ArgMin, the class of the lowest value "
            f"(distances, as KMeans's cluster ids), so {scores.name!r} is no class score, "
            "highest first: served as one, every label would be the farthest class; publish "
            f"without --labels to serve {own[0]!r} as the model answers it, or export scores "
            "where higher means more likely (negated distances)"
        )
