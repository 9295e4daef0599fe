"""`aiaas explain --png` read as a reviewer reads it: a sequence model's row ([steps, 1], cut
into one-step patches) as values over steps above their attributions; a regression's bars
asked of its value, not "why" of an output name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.image import imread

from infra.cli import explain_plot


def test_explain_png_of_a_sequence_draws_values_over_steps_above_their_attributions(
    tmp_path: Path,
) -> None:
    # A [32, 1] row was drawn as a 32 x 1 image: two one-pixel strips in an empty figure.
    steps = np.sin(np.arange(32) / 3).reshape(32, 1)
    doc = {
        "model": "waves", "version": "1", "parameters": {"patch": 1},
        "outputs": ["sine", "square", "sawtooth"],
        "features": [f"patch_r{t}_c0" for t in range(32)],
        "explanations": [{
            "label": "sawtooth", "prediction": [0.2, 0.3, 0.5], "base_value": [0.3, 0.3, 0.4],
            "attributions": np.linspace(-1, 1, 96).reshape(32, 3).tolist(),
        }],
    }  # fmt: skip
    explain_plot.draw(doc, tmp_path / "why.png", steps)
    assert imread(tmp_path / "why.png").shape[:2] == (550, 880)
    top, bottom = explain_plot._sequence(explain_plot.pyplot(), doc, steps).axes
    assert list(top.get_lines()[0].get_ydata()) == list(steps.reshape(-1))
    bars = bottom.patches
    assert len(bars) == 32 and bars[-1].get_height() == 1.0  # step 31's share of 'sawtooth'
    assert bottom.get_xlabel() == "step (attributed 1 step at a time)"


def test_a_regressions_bars_say_what_raises_and_lowers_its_value() -> None:
    doc = {
        "model": "diabetes", "version": "1", "parameters": {}, "outputs": ["prediction_0"],
        "features": ["bmi", "sex"],
        "explanations": [
            {"prediction": [207.6], "base_value": [152.0], "attributions": [[35.5], [-12.3]]}
        ],
    }  # fmt: skip
    (axes,) = explain_plot._bars(explain_plot.pyplot(), doc).axes
    assert axes.get_title() == (
        "diabetes:1 - what moves prediction_0? (Kernel SHAP)\nprediction_0 = 207.6, base 152"
    )
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert legend == ["raises prediction_0", "lowers"]
    doc["explanations"][0]["label"] = "high"  # a class keeps its question
    assert explain_plot.question(doc) == "why high?"
