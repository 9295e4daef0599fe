"""`publish --data`'s card of a model whose feature importance would take longer than the card
allows (a 32x32 RGB CNN: ~80 s estimated against 60 s) said "the limit is 60 s
(AIAAS_EXPLAIN_MAX_SECONDS): send fewer rows or ask for fewer samples": publish has neither
option, and that setting is not the card's limit. It now says how to explain rows once
published."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from infra.cli import publish_scoring
from infra.cli.main import main
from tests.infra.test_image_fixed_batch import SIDE, fixed_batch_cnn


def test_a_card_over_its_explain_budget_says_what_to_run_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "store")
    path = fixed_batch_cnn(tmp_path / "cnn.onnx", batch="N")
    images = np.random.default_rng(0).uniform(size=(30, 3, SIDE, SIDE)).astype(np.float32)
    np.savez(tmp_path / "held.npz", x=images, label=np.arange(30) % 3)
    monkeypatch.setattr(publish_scoring, "EXPLAIN_SECONDS", 1e-6)  # any model is over it
    argv = ["--store", store.uri, "publish", str(path), "--name", "cnn", "--labels", "a,b,c"]
    assert main([*argv, "--data", str(tmp_path / "held.npz")]) == 0
    card = (tmp_path / "store/models/cnn/versions/1/card/card.md").read_text()
    (line,) = [line for line in card.splitlines() if "feature importance" in line]
    assert line.startswith("- no feature importance: this explanation needs about "), line
    assert line.endswith(
        "the limit is 1e-06 s the card allows: explain rows once published instead, with "
        "\\`aiaas baseline cnn:1 ROWS\\` then \\`aiaas explain cnn:1 --file ROWS\\` (a lower "
        "--samples N is faster)"
    ), line
    assert "AIAAS_EXPLAIN_MAX_SECONDS" not in line and "send fewer rows" not in line
