"""`aiaas publish`: a classifier's own label output that answers class indexes, not classes.

onnxruntime's two-class TreeEnsembleClassifier whose leaves score both classes (CatBoost's
ONNX export: `class_ids` 0 and 1 in every leaf) answers its `label` output 0/1 whatever the
integer classes are. Served as it was, an OIP client (which has only that tensor) read 0/1 for
classes 3/7, and for classes 1/2 publish's check of the score columns' order took the 1s as
class `1` where the scores said the second class, and reversed the labels: every `predictions`
label was the other class.

Publish's made-up rows (functions/runtime/probe_outputs.py) tell: where every row's label is
the index of its largest score, and some row's label is no class at all, the output answers
indexes. The manifest then says so (`postprocessing.label_indexes`) and serving maps the output
to the classes (functions/runtime/label_indexes.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from functions.runtime.manifest import Postprocessing
from infra.cli.publish_classifier import ClassifierSetup


def answers_indexes(
    post: Postprocessing, labels: tuple[str, ...], probe: Mapping[str, np.ndarray] | None
) -> bool:
    """True when the probe shows `post.label_output` answering the index of the best score."""
    if probe is None or post.label_output is None or len(labels) < 2:
        return False
    try:
        classes = {int(label) for label in labels}
    except ValueError:  # string classes: onnxruntime answers them as they are
        return False
    scores, own = probe.get(post.scores_output), probe.get(post.label_output)
    if scores is None or own is None or own.dtype.kind not in "iu" or own.ndim != 1:
        return False
    if scores.ndim != 2 or scores.shape != (len(own), len(labels)):
        return False
    top = np.sort(scores, axis=1)
    decisive = top[:, -1] > top[:, -2]  # ties say nothing
    if not decisive.any():
        return False
    said, best = own[decisive], scores[decisive].argmax(axis=1)
    return bool((said == best).all() and any(int(v) not in classes for v in said))


def checked_label_indexes(
    setup: ClassifierSetup, probe: Mapping[str, np.ndarray] | None
) -> ClassifierSetup:
    """`setup`, its label output marked as answering indexes where the probe shows it."""
    post = setup.postprocessing
    if not answers_indexes(post, setup.labels, probe):
        return setup
    note = (
        f"the model's own {post.label_output!r} output answers class indexes (0, 1, ...), not "
        f"the classes {', '.join(setup.labels)} (onnxruntime's TreeEnsembleClassifier on "
        f"CatBoost's export): it is served mapped to the classes"
    )
    return replace(
        setup,
        postprocessing=replace(post, label_indexes=True),
        notes=(*setup.notes, note),
    )
