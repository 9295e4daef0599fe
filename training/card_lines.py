"""The training card's lines of facts: the classes, the spec's settings, the int8 gate.

Text only (card.py draws the plots and lays the card out); strings the spec or the data named
go through `card_text`.
"""

from __future__ import annotations

from typing import Any

from functions.runtime.metric_text import metric_name
from training.card_text import md_text


def class_lines(classes: list[dict[str, Any]]) -> list[str]:
    """The classes in the model's order with their rows per split: which class is which in the
    metrics and the confusion matrix (the card named none)."""
    if not classes:
        return []
    splits = [k for k in ("train", "validation", "test") if k in classes[0]]
    # The test split's scores per class: accuracy and even macro F1 hide a minority the model
    # never answers (a 99:1 card read accuracy 0.99 with the minority's recall nowhere but a PNG).
    scores = [k for k in ("precision", "recall", "f1") if k in classes[0]]
    heads = [f"{k} rows" for k in splits] + [f"test {SCORE_NAMES[k]}" for k in scores]
    return [
        "## Classes",
        "",
        f"{len(classes)} classes, in the model's order (its scores, the confusion matrix's "
        "rows and columns), with their rows in each split"
        + (" and the test split's scores (- where no row is or is predicted so)" if scores else "")
        + ":",
        "",
        f"| # | class | {' | '.join(heads)} |",
        f"|---|---|{'---:|' * len(heads)}",
        *(
            f"| {i} | {md_text(c['name'])} | "
            + " | ".join([*(str(c[k]) for k in splits), *(_score(c[k]) for k in scores)])
            + " |"
            for i, c in enumerate(classes)
        ),
        "",
    ]


SCORE_NAMES = {"precision": "precision", "recall": "recall", "f1": "F1"}


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def settings_line(training: dict[str, Any]) -> str:
    """The spec's training settings, so two versions' cards show what differs between them."""
    schedule = training.get("schedule")
    stopping = training.get("early_stopping")
    parts = [
        f"{training['epochs']} epochs at most, batch {training['batch_size']}",
        f"{training['optimizer']} learning rate {training['learning_rate']:g}"
        + (f", weight decay {training['weight_decay']:g}" if training.get("weight_decay") else ""),
        f"schedule {_schedule_text(schedule)}",
        f"seed {training['seed']}",
        f"validation/test split {training['validation_split']:g}/{training['test_split']:g}",
    ]
    if training.get("class_weight"):
        parts.append(f"class weight {training['class_weight']}")
    if isinstance(stopping, dict):
        watched = metric_name(str(stopping.get("monitor")))
        delta = f", min delta {stopping['min_delta']:g}" if stopping.get("min_delta") else ""
        parts.append(f"early stopping on {watched} (patience {stopping.get('patience')}{delta})")
    return "- Settings: " + "; ".join(parts)


def _schedule_text(schedule: Any) -> str:
    """The schedule's name, with the step schedule's parameters: two versions differing only
    in `gamma` had the same card."""
    if not isinstance(schedule, dict):
        return str(schedule)
    if schedule.get("name") != "step":
        return str(schedule.get("name"))
    return f"step (every {schedule.get('step_size')} epochs x {schedule.get('gamma')})"


def quantization_line(record: dict[str, Any]) -> str:
    if not record.get("enabled"):
        return "not requested"
    if "error" in record:
        return f"failed ({record['error']}); float32 published"
    verdict = (
        "kept" if record["kept"] else "rejected, float32 published"
    ) + f" ({record['reason']})"
    return (
        f"{verdict}: {record['metric']} {record['float_metric']:.4f} -> {record['int8_metric']:.4f} "
        f"({record['drop_points']:+.2f} points drop, allowed {record['max_drop_points']}), "
        f"{record['float_bytes']} -> {record['int8_bytes']} bytes"
    )


def change_lines(changes: dict[str, Any] | None) -> list[str]:
    """The card's section on what this version changes against the one its name served when
    it was trained (`training/changes.py`); none for a model's first version."""
    if not changes:
        return []
    said = [f"- warning: {md_text(w)}" for w in changes["warnings"]]
    said += [f"- note: {md_text(n)}" for n in changes["notes"]]
    if not said:
        said = ["- the same classes, columns (in the same order) and categories"]
    return [f"## Changes against {md_text(changes['against'])}", "", *said, ""]
