"""The fields batch files (and compare) give a row: each model output by its name, and for a
classifier `label` and `score` beside them. A model output named `label` or `score` (a regression
head beside class scores, a class-scores output itself, KMeans's cluster ids) was overwritten by
the classifier's field: written twice in a CSV header and a JSONL line, both holding the
classifier's value, and lost from an .npz. Such an output is written as `<name>_output`.
"""

from __future__ import annotations

import numpy as np

from functions.runtime.manifest import ModelManifest

LABEL_FIELD = "label"
SCORE_FIELD = "score"


def has_labels(manifest: ModelManifest) -> bool:
    """Classifiers with labels get `label` and `score` besides their raw outputs."""
    return manifest.postprocessing is not None and bool(manifest.labels)


def clashing(manifest: ModelManifest) -> dict[str, str]:
    """Output name -> the field it is written as, for a classifier's outputs named as the
    fields it adds (its own label output is not written: `label` is the same thing)."""
    if not has_labels(manifest):
        return {}
    post = manifest.postprocessing
    own_label = post.label_output if post is not None else None
    return {
        spec.name: f"{spec.name}_output"
        for spec in manifest.outputs
        if spec.name in (LABEL_FIELD, SCORE_FIELD) and spec.name != own_label
    }


def renamed(outputs: dict[str, np.ndarray], renames: dict[str, str]) -> dict[str, np.ndarray]:
    """`outputs` with the clashing ones under their field names (`clashing`)."""
    if not renames:
        return outputs
    return {renames.get(name, name): value for name, value in outputs.items()}
