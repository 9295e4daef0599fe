"""The card's Calibration section: a reliability diagram (accuracy against mean confidence per
bin, `training.calibration`) and its one line; drawn for `aiaas train` and `aiaas publish --data`
cards of classifiers alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.calibration import calibration_text
from training.card_residuals import pyplot
from training.card_text import md_text
from training.fonts import save

RELIABILITY = "reliability.png"
TITLE = "Reliability diagram"


def reliability_plot(values: dict[str, Any], path: Path, split: str = "test") -> Path:
    """The reliability diagram of `values` (a `calibration` result) for `split`'s rows."""
    plt = pyplot()
    fig = reliability_figure(values, split)
    save(fig, path, dpi=90)
    plt.close(fig)
    return path


def reliability_figure(values: dict[str, Any], split: str) -> Any:
    """Each bin with rows as a bar of its accuracy at its mean confidence, its row count above
    it (a bin of 3 rows says little), the diagonal a calibrated model's bars would reach."""
    bins = [b for b in values["per_bin"] if b["rows"]]
    fig, ax = pyplot().subplots(figsize=(4.5, 4.2))
    width = 1.0 / values["bins"]
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", label="calibrated")
    ax.bar(
        [b["low"] for b in bins], [b["accuracy"] for b in bins], width=0.9 * width, align="edge",
        color="tab:blue", alpha=0.75, label="accuracy per bin",
    )  # fmt: skip
    ax.plot(
        [b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", color="tab:red",
        markersize=4, label="at its mean confidence",
    )  # fmt: skip
    for b in bins:
        ax.text(b["low"] + 0.45 * width, min(b["accuracy"] + 0.02, 1.04), str(b["rows"]),
                ha="center", va="bottom", fontsize=7)  # fmt: skip
    ax.set(xlim=(0, 1), ylim=(0, 1.1), xlabel="confidence (top label's probability)",
           ylabel="accuracy")  # fmt: skip
    split = split if len(split) <= 40 else f"{split[:37]}..."  # a file's name, in one line
    ax.set_title(
        f"Reliability\n{split}, {values['rows']} rows, ECE {values['ece']:.2g} "
        "(numbers: rows a bin)",
        fontsize=10,
    )
    ax.legend(fontsize=7, loc="upper left")
    # fixed margins, not tight_layout: its extra draw was a third of the plot's cost, and
    # this figure's texts are the same few whatever the model
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.13, top=0.86)
    return fig


def calibration_lines(
    values: dict[str, Any] | None, why: str | None = None, rows_named: str = "test rows",
    plot: str | None = RELIABILITY,
) -> list[str]:  # fmt: skip
    """The card's Calibration section: its line and diagram (`plot`, None where not drawn), or
    why there is none (`why`); nothing for a model that is no classifier (neither given)."""
    if values is None and why is None:
        return []
    lines = ["## Calibration", ""]
    if values is None:
        return [*lines, f"No calibration: {md_text(why)}.", ""]
    lines += [
        md_text(calibration_text(values, rows_named)),
        "",
        "Top-label calibration: each row's answered class and its probability as served (the "
        f"confidence), in {values['bins']} equal-width confidence bins; ECE is the gap between "
        "accuracy and mean confidence per bin, weighted by the bin's rows; max its largest gap "
        "over bins with rows; Brier the mean squared distance of the probabilities from the "
        "one-hot truth.",
        "",
    ]
    return [*lines, f"![{TITLE}]({plot})", ""] if plot else lines
