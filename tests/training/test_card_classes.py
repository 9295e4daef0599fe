"""A trained classifier's card names its classes: which row of the confusion matrix, which class
of the metrics, is which, and how many rows each had in each split (the card named none: the
confusion PNG's ticks were the only place, cut at 18 characters). Through `aiaas train`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from infra.cli.main import main
from tests.torchless import torch_or_skip
from training.card_text import md_text

# Uneven, one name Markdown would read as markup (a table cell split, emphasis).
CLASSES = {"setosa": 30, "a|b *c*": 18, "<i>versicolor</i>": 12}


def test_a_trained_card_lists_its_classes_in_the_models_order_with_split_counts(
    tmp_path: Path,
) -> None:
    torch_or_skip()  # it trains
    rng = np.random.default_rng(3)
    lines = ["f1,f2,kind"]
    for i, (name, count) in enumerate(CLASSES.items()):
        for row in (rng.normal(size=(count, 2)) + 3 * i).round(3).tolist():
            lines.append(f'{row[0]},{row[1]},"{name}"')
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    spec = {
        "name": "kinds", "task": "classification", "dataset": {"path": "d.csv", "target": "kind"},
        "recipe": {"name": "logistic"}, "epochs": 2,
    }  # fmt: skip
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec))
    argv = ["--store", str(tmp_path / "store"), "train", str(tmp_path / "job.yaml")]
    assert main([*argv, "--out", str(tmp_path / "run"), "--no-progress"]) == 0

    card = (tmp_path / "run" / "card" / "card.md").read_text()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    labels, splits = manifest["labels"], manifest["dataset"]["splits"]
    assert sorted(labels) == sorted(CLASSES)
    head = card.index("## Classes")
    section = card[head : card.index("## Metrics")]
    table = [line for line in section.splitlines() if line.startswith("| ")]
    assert table[0] == (
        "| # | class | train rows | validation rows | test rows | test precision | test recall "
        "| test F1 |"
    )
    rows = [[cell.strip() for cell in _cells(line)] for line in table[1:]]
    assert [r[1] for r in rows] == [md_text(label) for label in labels]  # the model's order
    assert [r[0] for r in rows] == [str(i) for i in range(len(labels))]
    counts = np.array([[int(c) for c in r[2:5]] for r in rows])
    assert counts.sum(axis=1).tolist() == [CLASSES[label] for label in labels]
    assert counts.sum(axis=0).tolist() == [splits[k] for k in ("train", "validation", "test")]
    matrix = np.array(manifest["metrics"]["test"]["confusion_matrix"])
    assert counts[:, 2].tolist() == matrix.sum(axis=1).tolist()  # its rows are these classes
    recall = [r[6] for r in rows]  # the matrix's diagonal over its rows, class by class
    assert recall == [f"{matrix[i, i] / matrix[i].sum():.4f}" for i in range(len(labels))]
    assert "a\\|b \\*c\\*" in card and "&lt;i>versicolor&lt;/i>" in card  # as text


def _cells(line: str) -> list[str]:
    """A table row's cells, split at the `|` not escaped with a backslash."""
    cells, cell, escaped = [], "", False
    for char in line.strip()[1:-1]:
        if char == "|" and not escaped:
            cells.append(cell)
            cell = ""
            continue
        cell += char
        escaped = char == "\\" and not escaped
    return [*cells, cell]
