"""A missing number written any way training reads as a gap is one to batch scoring too.

A NaN with a sign (`-nan`, as C's printf and some exporters write it) parses as a float, so it
was no gap: training refused it ("has a NaN (nan) ... replace it with a finite number") though
`NaN` was filled, and pandas' own markers (`#NA`, `<NA>`, `NaT`) were "non-numeric values". Both
sides read `functions.runtime.codecs.nulls.MISSING_MARKERS`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.codecs.nulls import missing_marker
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.batch_support import read_csv, run
from tests.torchless import torch_or_skip
from tests.training.conftest import write_csv
from training.cells import numeric_column

MARKERS = ["-nan", "-NaN", "+nan", "#NA", "<NA>", "NaT", "1.#QNAN", "NaN", "NA", ""]


def test_every_nan_spelling_is_a_gap_to_training() -> None:
    values = np.array([*MARKERS, *(str(i) for i in range(40))], dtype=object)
    out = numeric_column(values, "a", max_missing=0.5)
    assert np.isnan(out[: len(MARKERS)]).all() and not np.isnan(out[len(MARKERS) :]).any()
    assert all(missing_marker(m) for m in MARKERS)
    assert not any(missing_marker(m) for m in ("0", "nano", "-", "n"))


def test_training_and_batch_fill_the_same_markers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch_or_skip()  # it trains
    rows = [[i * 0.5, (i * 7) % 11, i % 2] for i in range(60)]
    for i, marker in enumerate(MARKERS[:7]):  # the spellings that were refused before
        rows[3 + 5 * i][1] = marker
    write_csv(tmp_path / "d.csv", ["a", "b", "y"], rows)
    (tmp_path / "job.yaml").write_text(
        "name: gaps\ntask: classification\ndataset: {path: d.csv, target: y}\n"
        "recipe: {name: mlp, params: {hidden: [8]}}\nepochs: 1\n"
    )
    store = tmp_path / "store"
    argv = ["--store", str(store), "train", str(tmp_path / "job.yaml"), "--publish"]
    assert main([*argv, "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert "  column b: 7 missing values (11.7%) filled with the training median" in (
        capsys.readouterr().out
    )
    manifest = json.loads((store / "models/gaps/versions/1/manifest.json").read_text())
    assert manifest["preprocessing"]["columns"]["b"]["missing"] == 7
    # Batch: each marker scores as an empty cell does (the graph fills the median).
    lines = ["id,a,b", *(f"{i},1.5,{m}" for i, m in enumerate(MARKERS)), "x,1.5,3"]
    key = "batch/gaps/input/m.csv"
    LocalStore(store).put_bytes(key, ("\n".join(lines) + "\n").encode())
    summary = run(LocalStore(store), tmp_path / "batch", key)
    assert (summary["status"], summary["failed_rows"]) == ("succeeded", 0), summary
    out = read_csv(LocalStore(store), "batch/gaps/output/m.csv")
    empty = out[MARKERS.index("")]
    for row in out[: len(MARKERS)]:
        assert {k: v for k, v in row.items() if k not in ("id", "b")} == {
            k: v for k, v in empty.items() if k not in ("id", "b")
        }, row
