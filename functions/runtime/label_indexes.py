"""A classifier's own label output that answers class indexes, served as the classes.

onnxruntime's two-class TreeEnsembleClassifier whose leaves score both classes (CatBoost's
ONNX export) answers its `label` output as 0/1 whatever the integer classes (3/7, -1/1): an
OIP client, which has only that tensor, read the wrong class. Publish's probe finds it
(infra/cli/publish_label_indexes.py) and the manifest says so (`label_indexes`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from functions.runtime.errors import AiaasError
from functions.runtime.manifest import ModelManifest


class LabelClasses:
    """Maps a label output that answers class indexes (0/1) to the classes (3/7)."""

    def __init__(self, ref: str, output: str, classes: np.ndarray) -> None:
        self.ref, self.output, self.classes = ref, output, classes

    def __call__(self, named: dict[str, Any]) -> None:
        indexes = named.get(self.output)
        if indexes is None:
            return
        indexes = np.asarray(indexes)
        if indexes.size and (indexes.min() < 0 or indexes.max() >= len(self.classes)):
            bad = indexes[(indexes < 0) | (indexes >= len(self.classes))].flat[0]
            raise AiaasError(  # another onnxruntime than publish's answers otherwise: loud
                f"{self.ref}: output {self.output!r} answered {bad}, not a class index as "
                f"when it was published (postprocessing.label_indexes); publish it again"
            )
        named[self.output] = self.classes[indexes]


def label_classes(manifest: ModelManifest) -> LabelClasses | None:
    post = manifest.postprocessing
    if post is None or not post.label_indexes or post.label_output is None:
        return None
    try:
        classes = np.asarray([int(label) for label in manifest.labels], dtype=np.int64)
    except ValueError:
        raise AiaasError(
            f"{manifest.name}:{manifest.version}: postprocessing.label_indexes needs integer "
            f"classes, the manifest has {list(manifest.labels)}"
        ) from None
    return LabelClasses(f"{manifest.name}:{manifest.version}", post.label_output, classes)
