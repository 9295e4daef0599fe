"""The text half of the parity gate: text -> ids -> logits, as serving will run it.

The tokenizer is embedded in the exported file first; then the test split's raw texts are
tokenized by the vocabulary read back from that file (what the runtime reads), the ids are
compared with the ones training used, and onnxruntime's logits on the request-style ids (padded
to the longest text, not to max_length) are compared with torch's on the training ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from functions.runtime.tokenizer import METADATA_KEY, Vocabulary, embed
from training.errors import ExportError
from training.prepare import PreparedData
from training.spec import ExportSpec


def served_vocabulary(path: Path) -> tuple[ort.InferenceSession, Vocabulary]:
    """The session and the vocabulary the runtime would read from `path`."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if raw is None:
        raise ExportError(f"{path} carries no tokenizer ({METADATA_KEY} metadata)")
    return session, Vocabulary.from_json(raw)


def embed_and_check(
    model: nn.Module, path: Path, data: PreparedData, spec: ExportSpec
) -> dict[str, Any]:
    """Embed the tokenizer in `path` and check it end to end; ExportError when anything differs."""
    assert data.vocabulary is not None
    embed(str(path), data.vocabulary)
    session, served = served_vocabulary(path)
    texts = list(data.test_texts)
    ids = served.encode(texts, length=data.vocabulary.max_length)
    differ = np.flatnonzero((ids != data.test.x).any(axis=1))
    if differ.size:
        raise ExportError(
            f"the embedded tokenizer gives other ids than training for {differ.size} test "
            f"texts, e.g. {texts[differ[0]]!r}; not publishing"
        )
    request_ids = served.encode(texts)  # as a request batch: padded to its longest text
    got = np.asarray(session.run(None, {session.get_inputs()[0].name: request_ids})[0])
    with torch.inference_mode():
        expected = model.cpu().eval()(torch.from_numpy(data.test.x)).numpy()
    diff = float(np.abs(got.astype(np.float64) - expected).max())
    if not diff <= spec.parity_tolerance:
        raise ExportError(
            f"text -> ids -> logits through the served tokenizer differs from torch by {diff:.3g} "
            f"on {len(texts)} test texts (tolerance {spec.parity_tolerance:g}); not publishing"
        )
    return {"rows": len(texts), "ids_equal": True, "max_abs_diff": diff}
