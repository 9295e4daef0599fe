"""Which output drift bins as the prediction, and where a version's baseline is. The predict
path asks on every request drift counts, so this is kept apart from the histograms (`live.py`,
`baseline.py`), which a serve start or a function's init imports only once a version's baseline
is read (~3 ms of its start)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.runtime.version_files import BASELINE_FILE as BASELINE_FILE  # beside model.onnx

if TYPE_CHECKING:
    from functions.runtime.manifest import ModelManifest


def value_output(manifest: ModelManifest) -> str:
    """The output a model without classes answers its value in: the first of one value a row
    (a two-tower model's score beside its embedding, which comes first), else the first output.
    `aiaas publish --data` and `aiaas compare` score it; drift bins it (`prediction_output`)."""
    ones = (s.name for s in manifest.outputs if s.rank == 1 or s.shape[1:] == (1,))
    return next(ones, manifest.outputs[0].name)


def prediction_output(manifest: ModelManifest) -> str:
    """The output whose values a new baseline bins as the prediction: a classifier's class
    scores, else its value (`value_output`). The first output was binned before: a two-tower
    model's drift watched one coordinate of its embedding, not its score."""
    post = manifest.postprocessing
    return post.scores_output if post is not None else value_output(manifest)


def binned_output(manifest: ModelManifest, recorded: str) -> str:
    """The output a baseline's predictions were fitted on, which served ones are binned from:
    the one it names (`recorded`), else the rule of a baseline written before they named it (a
    classifier's scores, else the first output): another output's values on its edges would
    show as drift."""
    if recorded:
        return recorded
    post = manifest.postprocessing
    return post.scores_output if post is not None else manifest.outputs[0].name
