"""`aiaas publish` without the onnx package: a classifier's activation from what its scores
output answered made-up rows, as nothing could be read from the graph.

The base install has no onnx, and the activation of any output of several scores was then
"softmax": a scikit-learn export's probabilities (README "Install", then its first publish with
--labels) got a second softmax, and served 0.57 where the model said 0.98, after a publish that
exited 0. onnxruntime alone runs the graph on made-up rows (`OnnxSignature.probe`, rows at
scales from 0 to 10,000, functions/runtime/probe_outputs.py), and its answers tell:

- a score outside [0, 1] is no probability: logits (softmax; sigmoid for one score a row);
- rows of scores within [0, 1] that each sum to 1, or one score a row within [0, 1], are
  probabilities (none);
- scores within [0, 1] whose rows do not sum to 1, or no answer (the graph refused the rows, or
  is too big to run at publish), tell nothing: --activation is asked for, not guessed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from functions.runtime.errors import BadRequest
from functions.runtime.manifest import TensorSpec

PROBABILITY_SLACK = 1e-5  # how far past [0, 1] float32 rounding takes a probability
ROW_SUM_SLACK = 1e-3  # how far from 1 a row of float32 probabilities may sum
UNREAD = "the onnx package is not installed, so nothing was read from the graph"


def unread_activation(scores: TensorSpec, probe: Mapping[str, np.ndarray] | None) -> str:
    """The activation of `scores` as its answers to the made-up rows show it, or a BadRequest
    asking for --activation where they do not."""
    answered = None if probe is None else probe.get(scores.name)
    values = None if answered is None else np.asarray(answered)
    if values is None or values.dtype.kind != "f" or values.ndim == 0 or not values.size:
        raise _ask(scores, "the graph refused made-up rows, so nothing says what it answers")
    rows = values.reshape(len(values), -1)
    rows = rows[np.isfinite(rows).all(axis=1)]
    if not rows.size:
        raise _ask(scores, f"{scores.name!r} answered made-up rows with no finite scores")
    one = rows.shape[1] == 1
    if bool(((rows < -PROBABILITY_SLACK) | (rows > 1 + PROBABILITY_SLACK)).any()):
        return "sigmoid" if one else "softmax"
    if one or bool((np.abs(rows.sum(axis=1) - 1) <= ROW_SUM_SLACK).all()):
        return "none"
    raise _ask(
        scores,
        f"{scores.name!r} answered made-up rows with scores within [0, 1] whose rows do not sum "
        "to 1 (one sigmoid a class?)",
    )


def unread_note(scores: TensorSpec, activation: str) -> str:
    """What publish chose for a graph it could not read, and why: printed after publishing."""
    if activation == "none":
        said = "probabilities (within [0, 1], each row summing to 1)"
    else:
        said = "scores outside [0, 1], no probabilities"
    return (
        f"{UNREAD}: {scores.name!r} answered made-up rows with {said}, so its activation is "
        f"{activation} (--activation overrides; pip install onnx to read the graph)"
    )


def _ask(scores: TensorSpec, why: str) -> BadRequest:
    choices = "none (a probability) or sigmoid (a logit)"
    if scores.rank > 1 and scores.shape[1:] not in ((1,),):
        choices = "none (probabilities), softmax (logits) or sigmoid (one logit a class)"
    return BadRequest(
        f"{UNREAD}, and {why}: say what {scores.name!r} holds with --activation {choices}, "
        "or pip install onnx"
    )
