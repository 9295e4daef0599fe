"""A trained classifier's card says whether its probabilities mean what they say.

Its accuracy and confusion matrix said how often it is right, never whether its 0.9 is right
nine times in ten. The calibration is that of the served file's softmax over the test rows its
accuracy is scored on: checked here against numpy over onnxruntime's outputs for those rows,
prepared again from the spec. A regressor has no probabilities and no such section.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="training needs torch: pip install 'aiaas[training]'")

import numpy as np
import onnxruntime as ort

from tests.cli_run import run_joined
from tests.training.conftest import BRIEF_CARD, RECIPE_JOBS, Published, tiny_spec
from training.datasets import load_raw
from training.prepare import prepare
from training.recipes import CATALOG


def test_the_card_calibration_is_that_of_the_served_softmax_on_the_test_rows(
    published: Published,
) -> None:
    result = published.results["logistic"]
    spec = tiny_spec("logistic", export={**RECIPE_JOBS["logistic"].get("export", {}), **BRIEF_CARD})
    kind = CATALOG[spec.recipe.name].kind
    data = prepare(load_raw(spec.dataset, kind, None), spec, kind)
    feeds = data.served_test()
    session = ort.InferenceSession(str(result.model_path))
    if not isinstance(feeds, dict):
        feeds = {session.get_inputs()[0].name: feeds}
    logits = session.run(None, feeds)[0].astype(np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    truth = data.test.y
    top, confidence = probs.argmax(axis=1), probs.max(axis=1)
    gaps, weighted = [], 0.0
    for low in np.arange(10) / 10:
        inside = (confidence >= low) & ((confidence < low + 0.1) | (low == 0.9))
        if inside.any():
            gap = abs((top[inside] == truth[inside]).mean() - confidence[inside].mean())
            gaps.append(gap)
            weighted += inside.sum() / len(truth) * gap
    brier = ((probs - np.eye(probs.shape[1])[truth]) ** 2).sum(axis=1).mean()

    got = result.manifest.metrics["test"]["calibration"]
    assert got["rows"] == len(truth) == result.manifest.metrics["test"]["rows"]
    assert got["ece"] == pytest.approx(weighted, abs=1e-6)
    assert got["max_error"] == pytest.approx(max(gaps), abs=1e-6)
    assert got["brier"] == pytest.approx(brier, abs=1e-6)
    run_folder = result.model_path.parent
    assert (run_folder / "card" / "reliability.png").read_bytes().startswith(b"\x89PNG")
    assert "card/reliability.png" in {f.path for f in result.manifest.files}
    text = (run_folder / "card" / "card.md").read_text()
    section = text.split("## Calibration\n", 1)[1].split("\n## ", 1)[0]
    line = (
        f"ECE {got['ece']:.2g}, max {got['max_error']:.2g} over 10 bins of {len(truth)} test "
        f"rows; Brier {got['brier']:.2g} (a rough estimate: fewer than 100 rows, a few a bin)"
    )  # iris: 150 rows, 30 of them test rows
    assert line in section and "![Reliability diagram](reliability.png)" in section
    code, out = run_joined(published.store_dir, "show", f"{result.manifest.name}:1")
    assert code == 0, out
    test_line = next(i for i, s in enumerate(out.splitlines()) if s.startswith("    test: "))
    assert out.splitlines()[test_line + 1] == f"      calibration: {line}"


def test_a_regressor_card_has_no_calibration(published: Published) -> None:
    result = published.results["linear"]
    assert "calibration" not in result.manifest.metrics["test"]
    assert not any("reliability" in f.path for f in result.manifest.files)
    text = (result.model_path.parent / "card" / "card.md").read_text()
    assert "## Calibration" not in text and "reliability" not in text
