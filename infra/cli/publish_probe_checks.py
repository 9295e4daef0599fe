"""`aiaas publish` for classifiers: the classifier setup checked against the model's own
answers to the rows publish made up (`OnnxSignature.probe`, functions/runtime/probe_outputs.py).

- `checked_by_own_labels`: score columns in the other order than the classes (onnxruntime's
  binary SVMClassifier answers [d, -d]); the labels follow the columns.
- `checked_by_probe`: scores the graph names as a classifier's, served as probabilities, that
  answered outside [0, 1] are margins: refused, with the activation that turns them into
  probabilities. A binary margin pair, [-m, m] a row (skl2onnx's `raw_scores` of a
  GradientBoostingClassifier or a LogisticRegression), takes a sigmoid: element-wise it gives
  [1 - sigmoid(m), sigmoid(m)], predict_proba, where a softmax gives sigmoid(2m) (0.6473 for
  predict_proba's 0.5753; until 2026-12-06 publish advised it, and took it when asked).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from functions.runtime.errors import BadRequest
from functions.runtime.graph_classes import GraphClasses
from infra.cli.publish_classifier import ClassifierOptions, ClassifierSetup
from infra.cli.unread_activation import PROBABILITY_SLACK, ROW_SUM_SLACK

PAIR_SLACK = 1e-6  # |s0 + s1| over |s| that is still one margin negated (float32 rounding)


def checked_by_own_labels(
    setup: ClassifierSetup, graph: GraphClasses, probe: Mapping[str, np.ndarray] | None
) -> ClassifierSetup:
    """`setup`, its labels in the order of the score columns the model's own label output says.

    onnxruntime's binary SVMClassifier without probabilities (skl2onnx's `SVC()`) answers its
    two decision columns as [d, -d], d > 0 for the second class: read in the classes' order,
    every label served was the other class (40 of 40 rows). The rows publish made up
    (`OnnxSignature.probe`) are answered by both the scores and the label output; where every
    row's largest score names the other class of two, the labels follow the columns."""
    post = setup.postprocessing
    if probe is None or post.label_output is None or len(graph.labels) != 2:
        return setup
    if post.label_indexes:  # its 0/1 are indexes, not the classes named 0 and 1
        return setup
    scores, own = probe.get(post.scores_output), probe.get(post.label_output)
    if scores is None or own is None or scores.ndim != 2 or scores.shape[1] != 2:
        return setup
    index = {label: i for i, label in enumerate(graph.labels)}
    told = [index.get(str(value)) for value in own.ravel().tolist()]
    # rows whose two scores tie, or whose label is not a class, tell nothing
    said = [
        (int(row[1] > row[0]), told[i])
        for i, row in enumerate(scores.tolist())
        if row[0] != row[1] and i < len(told) and told[i] is not None
    ]
    if not said or any(best == label for best, label in said):
        return setup
    labels = setup.labels[::-1]
    note = (
        f"{post.scores_output!r} holds the two classes' scores in reverse order (as onnxruntime's "
        f"binary SVMClassifier answers them; the model's own {post.label_output!r} says so): "
        f"its columns are {', '.join(labels)}"
    )
    return replace(setup, labels=labels, notes=(*setup.notes, note))


def checked_by_probe(
    setup: ClassifierSetup,
    graph: GraphClasses,
    probe: Mapping[str, np.ndarray] | None,
    options: ClassifierOptions,
) -> ClassifierSetup:
    """`setup`, unless scores served as probabilities (activation none, chosen because the graph
    names its classes) answered the made-up rows outside [0, 1]: margins, not probabilities
    (onnxmltools' XGBoost `multi:softmax`: 3.118 served where predict_proba says 0.9919); or
    unless `--activation softmax` was asked for a classical exporter's binary margin pair."""
    post = setup.postprocessing
    if probe is None:
        return setup
    scores = np.asarray(probe.get(post.scores_output, ()))
    if options.activation == "softmax" and graph.labels and margin_pair(scores):
        raise BadRequest(
            f"--activation softmax: output {post.scores_output!r} answers each made-up row as "
            f"[-m, m], one binary margin negated (e.g. {_pair_shown(scores)}, as skl2onnx "
            "writes a binary classifier's raw scores): a softmax of it is sigmoid(2m), not the "
            "probability sigmoid(m) a logistic model's predict_proba gives "
            "(GradientBoostingClassifier, LogisticRegression); pass --activation sigmoid to "
            "serve probabilities, or --activation none to serve these scores as they are"
        )
    if options.activation is not None or post.activation != "none":
        return setup
    if post.scores_output in graph.probability_outputs | graph.decision_outputs:
        return setup
    if scores.dtype.kind != "f":
        return setup
    # float32 rounding is no margin: a forest's summed leaf shares give 1.0000001 where
    # every tree agrees, and such a plain scikit-learn forest was refused.
    slack = PROBABILITY_SLACK
    outside = scores[np.isfinite(scores) & ((scores < -slack) | (scores > 1 + slack))]
    if outside.size == 0:
        return setup
    one = scores.ndim == 1 or scores.shape[1:] == (1,)
    value = float(outside[0])  # as short as float32 writes it (3.118, 1.0000001), else whole
    shown = str(np.float32(value)) if float(np.float32(value)) == value else repr(value)
    said = f"output {post.scores_output!r} answered {shown} for a made-up row"
    rows = scores.reshape(len(scores), -1) if scores.ndim > 1 and not one else None
    sums = None if rows is None else rows.sum(axis=1)[np.isfinite(rows).all(axis=1)]
    if sums is not None and sums.size and bool((np.abs(sums - 1) <= ROW_SUM_SLACK).all()):
        # Rows that already sum to 1 are no margins: a softmax over them serves wrong scores.
        raise BadRequest(
            f"{said}: scores outside [0, 1] are no probabilities, yet each row sums to 1 as "
            "probabilities do, so no margins a softmax would turn into them; pass "
            "--activation none to serve these scores as they are"
        )
    if margin_pair(scores):
        raise BadRequest(
            f"{said}: scores outside [0, 1] are no probabilities; each row is [-m, m], one "
            f"binary margin negated (e.g. {_pair_shown(scores)}, as skl2onnx writes a binary "
            "classifier's raw scores): pass --activation sigmoid to serve probabilities "
            "(sigmoid(m), as predict_proba gives; a softmax would give sigmoid(2m)), or "
            "--activation none to serve these scores as they are"
        )
    raise BadRequest(
        f"{said}: scores outside [0, 1] are no probabilities (margins, as XGBoost's "
        f"multi:softmax exports them); pass --activation {'sigmoid' if one else 'softmax'} to "
        "serve probabilities, or --activation none to serve these scores as they are"
    )


def margin_pair(scores: np.ndarray) -> bool:
    """Two columns a row that are one margin and its negation, [-m, m], on every made-up row
    (some m not 0): what skl2onnx writes for a binary classifier's raw scores."""
    if scores.dtype.kind != "f" or scores.ndim != 2 or scores.shape[1] != 2:
        return False
    rows = scores[np.isfinite(scores).all(axis=1)].astype(np.float64)
    size = np.abs(rows).max(axis=1) if rows.size else rows
    if not rows.size or not (size > 0).any():
        return False
    return bool((np.abs(rows[:, 0] + rows[:, 1]) <= PAIR_SLACK * size).all())


def _pair_shown(scores: np.ndarray) -> str:
    """The first made-up row's pair that is not [0, 0], as float32 writes it:
    `[1.8713485, -1.8713485]`."""
    row = scores[int(np.argmax(np.abs(np.nan_to_num(scores[:, 0])) > 0))]
    return f"[{np.float32(row[0])!s}, {np.float32(row[1])!s}]"
