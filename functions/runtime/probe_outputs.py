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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import onnxruntime as ort

from functions.runtime.dtypes import BY_NAME
from functions.runtime.manifest import TensorSpec

ROWS = 8
# One made-up row per scale, so the rows reach more than one class of a model whose features
# are on any scale (breast cancer's run to thousands, a scaled pipeline's near 0).
SCALES = (0.0, 0.01, 0.1, 1.0, 10.0, 100.0, 1_000.0, 10_000.0)


def probe_feeds(inputs: tuple[TensorSpec, ...], rows: int = ROWS) -> dict[str, np.ndarray]:
    """Made-up inputs: `rows` rows (one where the graph fixes its batch at 1), each dynamic
    dimension past the batch 1 long; floats drawn at a scale a row, everything else zero
    (a string "" or its missing category)."""
    rng = np.random.default_rng(0)
    feeds = {}
    for spec in inputs:
        batch = 1 if spec.shape[:1] == (1,) else rows
        shape = (batch, *(dim if dim > 0 else 1 for dim in spec.shape[1:])) if spec.rank else ()
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
    session: ort.InferenceSession, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]
) -> dict[str, np.ndarray] | None:
    """Each output's answer to `probe_feeds` (a ZipMap's as float32 [rows, classes] in its
    keys' order), or None when the graph refuses them."""
    feeds = probe_feeds(inputs)
    try:
        answers = session.run([spec.name for spec in outputs], feeds)
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
