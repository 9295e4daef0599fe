"""What a classical exporter's graph answers, beside what it declares: publish runs it once.

skl2onnx declares some outputs with a width the graph does not produce, and everything built on
the declared shape went wrong with it:
- a binary RidgeClassifier's `probabilities` is declared [N, 2] and holds one decision value a
  row: served as two probabilities, with a cut at 0.5 instead of 0 (wrong labels), and a batch
  CSV with two score columns in its header and one in its rows (every later column shifted);
- a multi-output RandomForestRegressor's `variable` is declared [N, 1] and holds one column a
  target: a batch CSV with one `pred_variable` column and three values a row.

So a graph of ai.onnx.ml operators (skl2onnx's and onnxmltools' models: small, fast) is run on a
few made-up rows, and an output's fixed dimensions are taken from what it answers where they
differ from what it declares. The answers also let publish check a classifier's scores against
the model's own label output (infra/cli/publish_classifier.py). Nothing is learned from a graph
that refuses the made-up rows (a category it never saw, an index out of its table): its
declared shapes stand, as before.

Any other graph is run too where a declared fixed dimension may be an exporter's example rather
than the model's (`may_answer_otherwise`): torch.onnx.export(dynamo=True) of a GRU over steps of
any length declared its per-step output [batch, 5, 6], the example's 5 steps, and answers
[batch, steps, 6]; batch scoring refused every file of it, by the declared shape. There a
dimension the answer contradicts becomes dynamic (-1), not the answered size: the made-up rows
have made-up lengths, so the answer says only that the declared size is not the model's.

Without the onnx package (a base install) nothing is read from the graph, and publish runs it
on the same rows as an ai.onnx.ml graph (`probe_unread`): what a classifier's scores output
answers them is all that says whether it holds probabilities (infra/cli/unread_activation.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort

from functions.runtime.dtypes import BY_NAME
from functions.runtime.manifest import TensorSpec

if TYPE_CHECKING:
    import onnx

ROWS = 8
# One made-up row per scale, so the rows reach more than one class of a model whose features
# are on any scale (breast cancer's run to thousands, a scaled pipeline's near 0).
SCALES = (0.0, 0.01, 0.1, 1.0, 10.0, 100.0, 1_000.0, 10_000.0)
# A graph that is not ai.onnx.ml's runs on 2 rows, each dynamic dimension past the batch 7 long
# (not an example's usual 1 or 5, and enough for a small image through a few strided layers);
# and not at all from this many weight values on: the run would read every weight (a 2.5 GB
# transformer's) at each publish.
LENGTH = 7
MAX_WEIGHTS = 64 * 2**20


# The refusal of made-up rows is caught: onnxruntime's log of it would interrupt publish's output.
_QUIET = ort.RunOptions()
_QUIET.log_severity_level = 4


def probe_feeds(
    inputs: tuple[TensorSpec, ...], rows: int = ROWS, length: int = 1
) -> dict[str, np.ndarray]:
    """Made-up inputs: `rows` rows (one where the graph fixes its batch at 1), each dynamic
    dimension past the batch `length` long; floats drawn at a scale a row, everything else zero
    (a string "" or its missing category)."""
    rng = np.random.default_rng(0)
    feeds = {}
    for spec in inputs:
        batch = 1 if spec.shape[:1] == (1,) else rows
        shape = (
            (batch, *(dim if dim > 0 else length for dim in spec.shape[1:])) if spec.rank else ()
        )
        if spec.dtype == "string":
            feeds[spec.name] = np.full(shape, spec.missing or "", dtype=object)
        elif spec.dtype.startswith("float"):
            scales = np.resize(np.asarray(SCALES), batch).reshape(
                (batch,) + (1,) * (len(shape) - 1)
            )
            values = rng.standard_normal(shape) * (scales if spec.rank else 1.0)
            feeds[spec.name] = values.astype(BY_NAME[spec.dtype].numpy)
        else:
            feeds[spec.name] = np.zeros(shape, dtype=BY_NAME[spec.dtype].numpy)
    return feeds


def probe_run(
    session: ort.InferenceSession,
    inputs: tuple[TensorSpec, ...],
    outputs: tuple[TensorSpec, ...],
    rows: int = ROWS,
    length: int = 1,
) -> dict[str, np.ndarray] | None:
    """Each output's answer to `probe_feeds` (a ZipMap's as float32 [rows, classes] in its
    keys' order), or None when the graph refuses them."""
    feeds = probe_feeds(inputs, rows, length)
    try:
        answers = session.run([spec.name for spec in outputs], feeds, _QUIET)
    except Exception:  # a refusal of made-up values says nothing about the model
        return None
    named: dict[str, np.ndarray] = {}
    for spec, answer in zip(outputs, answers, strict=True):
        if spec.map_keys:
            named[spec.name] = np.array(
                [[row[key] for key in spec.map_keys] for row in answer], dtype=np.float32
            )
        else:
            named[spec.name] = np.asarray(answer)
    return named


def probe_unread(
    session: ort.InferenceSession,
    inputs: tuple[TensorSpec, ...],
    outputs: tuple[TensorSpec, ...],
    model_bytes: int,
) -> dict[str, np.ndarray] | None:
    """`probe_run`'s answers for a graph publish could not read (no onnx package): ROWS rows,
    each dynamic dimension past the batch 1 long, else LENGTH long (a network over steps);
    None when the graph refuses both, or its files hold as many bytes as MAX_WEIGHTS float32
    weights (their count is the graph's, which is not read here)."""
    if model_bytes >= 4 * MAX_WEIGHTS:
        return None
    answered = probe_run(session, inputs, outputs)
    if answered is None and any(-1 in spec.shape[1:] for spec in inputs):
        answered = probe_run(session, inputs, outputs, length=LENGTH)
    return answered


def as_answered(
    outputs: tuple[TensorSpec, ...], answered: Mapping[str, Any]
) -> tuple[TensorSpec, ...]:
    """`outputs` with each fixed dimension past the batch as the probe's answer has it, where
    the declared one differs (or the rank does); dynamic ones stay dynamic."""
    fixed = []
    for spec in outputs:
        answer = answered.get(spec.name)
        if answer is None or spec.map_keys or not spec.rank or answer.ndim < 1:
            fixed.append(spec)
            continue
        seen = answer.shape[1:]
        declared = spec.shape[1:]
        if len(seen) == len(declared) and all(
            d in (-1, s) for d, s in zip(declared, seen, strict=True)
        ):
            fixed.append(spec)
            continue
        fixed.append(replace(spec, shape=(spec.shape[0], *seen)))
    return tuple(fixed)


def may_answer_otherwise(
    proto: onnx.ModelProto, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]
) -> bool:
    """Whether some output declares a fixed dimension past its batch while some input has a
    dynamic one there (a sequence's steps, an image's size), so that the fixed one may be the
    exporter's example; and the graph is small enough to run at publish (`MAX_WEIGHTS`)."""
    return (
        any(-1 in spec.shape[1:] for spec in inputs)
        and any(any(dim > 0 for dim in spec.shape[1:]) for spec in outputs if not spec.map_keys)
        and sum(math.prod(tensor.dims) for tensor in proto.graph.initializer) < MAX_WEIGHTS
    )


def as_dynamic(
    outputs: tuple[TensorSpec, ...], answered: Mapping[str, Any]
) -> tuple[TensorSpec, ...]:
    """`outputs` with each fixed dimension past the batch that the answer (to rows of made-up
    lengths) contradicts made dynamic; an answer of another rank leaves the declaration."""
    found = []
    for spec in outputs:
        answer = answered.get(spec.name)
        if answer is None or spec.map_keys or answer.ndim != spec.rank:
            found.append(spec)
            continue
        seen = answer.shape[1:]
        dims = (d if d in (-1, s) else -1 for d, s in zip(spec.shape[1:], seen, strict=True))
        found.append(replace(spec, shape=(spec.shape[0], *dims)))
    return tuple(found)
