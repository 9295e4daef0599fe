"""The picture of a comparison: a cross-version confusion matrix (classifiers), or B against A
and, with labels, each version's residuals (regressors). matplotlib is imported only here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from functions.runtime.errors import BadRequest
from infra.cli.compare_commands import shown_classes
from infra.cli.pyplot import pyplot
from training.card import label_room, tick_labels
from training.fonts import save


def draw(report: dict[str, Any], path: Path) -> None:
    """Write the report's plot to `path` (PNG)."""
    plt = pyplot()
    if report.get("confusion"):
        figure = _confusion(plt, report)
    elif report.get("points"):
        figure = _scatter(plt, report)
    else:
        raise BadRequest("nothing to draw: the versions have no labels and no one-value output")
    save(figure, path, dpi=110, format="png")  # not by the name's suffix: whatever it is
    plt.close(figure)


def _confusion(plt: Any, report: dict[str, Any]) -> Any:
    labels, matrix = report["confusion"]["labels"], report["confusion"]["matrix"]
    ticks = tick_labels(labels)  # long class names wrapped: they pushed the title out
    # Versions matched by class index: the columns are in B's own names (A's are the rows').
    columns = tick_labels(report["confusion"].get("b_labels") or labels)
    size = max(4.0, 0.5 * len(labels) + 2.5) + label_room(ticks + columns)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, label="rows")
    axes.set_xticks(range(len(labels)), columns, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), ticks)
    axes.set_xlabel(f"version {report['b']} (B) says")
    axes.set_ylabel(f"version {report['a']} (A) says")
    top = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            colour = "white" if count > top / 2 else "black"
            axes.text(j, i, str(count), ha="center", va="center", color=colour, fontsize=8)
    agreement = report.get("agreement")
    title = f"{report['model']}: {report['a']} vs {report['b']}"
    if agreement:
        by = " by class index" if agreement.get("by") == "class index" else ""
        title += f", agreement {agreement['rate']:.1%}{by}"
    title += not_compared(report)
    differ = report.get("labels_differ") or {}
    only = [differ.get("only_a") or [], differ.get("only_b") or []]
    if any(only):  # classes only one version has, and the rows answered with one
        title += (
            f"\nonly A: {shown_classes(only[0])}; only B: {shown_classes(only[1])} "
            f"({differ.get('unshared_rows', 0)} rows answered with one)"
        )
    axes.set_title(title)
    figure.tight_layout()
    return figure


def not_compared(report: dict[str, Any]) -> str:
    """The title's line for rows the picture leaves out, or "". A version answering NaN on 113
    of 1,000 rows was drawn as "agreement 100.0%" with nothing saying the matrix held 887: a
    picture pasted into a review read as a candidate that never fails."""
    rows = report.get("rows") or {}
    failed = int(rows.get("failed") or 0)
    if not failed:
        return ""
    refused = rows.get("refused") or {}
    parts = [
        f"{refused[key]} refused by {who}"
        for key, who in (("b", "B only"), ("a", "A only"), ("both", "both"))
        if refused.get(key)
    ]
    bad = failed - sum(int(n) for n in refused.values())
    if bad > 0:
        parts.append(f"{bad} bad")
    total = int(rows.get("compared") or 0) + failed
    return f"\n{failed} of {total} rows not drawn ({', '.join(parts)})"


def _scatter(plt: Any, report: dict[str, Any]) -> Any:
    points = report["points"]
    a, b, truth = points["a"], points["b"], points.get("truth")
    panels = 2 if truth else 1
    figure, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 5), squeeze=False)
    left = axes[0][0]
    left.scatter(a, b, s=6, alpha=0.5)
    low, high = min(a + b), max(a + b)
    left.plot([low, high], [low, high], color="grey", linewidth=1)  # where they agree
    left.set_xlabel(f"version {report['a']} (A): {points['output']}")
    left.set_ylabel(f"version {report['b']} (B)")
    left.set_title(f"B vs A, mean |B-A| {points['mean_abs_diff']:.4g}")
    if truth:
        right = axes[0][1]
        kept = [i for i, t in enumerate(truth) if t is not None]
        for values, name in ((a, report["a"]), (b, report["b"])):
            right.scatter(
                [truth[i] for i in kept], [values[i] - truth[i] for i in kept], s=6, alpha=0.5,
                label=f"version {name}",
            )  # fmt: skip
        right.axhline(0, color="grey", linewidth=1)
        right.set_xlabel("truth")
        right.set_ylabel("prediction - truth")
        right.set_title("residuals")
        right.legend()
    figure.suptitle(f"{report['model']}: {report['a']} vs {report['b']}{not_compared(report)}")
    figure.tight_layout()
    return figure
