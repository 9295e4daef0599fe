"""Soak of batch scoring: a big CSV with a fraction of bad rows, through the batch handler.

Every good row must come out scored (once, in order, matching onnxruntime) and every bad row
must be reported in the errors file with its line number; nothing else may appear in either.
Bad rows come in five kinds: a word, too few fields, NaN (the model wants finite inputs), an
empty cell, too many fields.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

MODEL = "soak-small"
FEATURES = 8
KEY = f"batch/{MODEL}/input/soak.csv"
OUT = f"batch/{MODEL}/output/soak.csv"
BLOCK = 100_000


def publish_small(store_dir: Path) -> Path:
    """An MLP 8 -> 32 -> 3 classifier published as `soak-small:1` (finite inputs only)."""
    from bench.models import mlp_onnx, publish_classifier

    path = mlp_onnx(store_dir.parent / "small.onnx", sizes=(FEATURES, 32, 3), seed=3)
    publish_classifier(store_dir, MODEL, path, labels=("a", "b", "c"))
    return path


def bad_line(i: int, kind: int) -> str:
    cells = ["1.5"] * FEATURES
    if kind == 0:
        cells[0] = "abc"
    elif kind == 1:
        cells = cells[:2]
    elif kind == 2:
        cells[3] = "nan"
    elif kind == 3:
        cells[5] = ""
    else:
        cells.append("9")
    return ",".join([f"r{i}", *cells])


def write_input(path: Path, rows: int, bad_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The CSV (id, x_0..x_7); returns (features of every row, sorted indices of bad rows)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    bad = np.sort(rng.choice(rows, size=int(rows * bad_fraction), replace=False))
    kinds = dict(zip(bad.tolist(), range(len(bad)), strict=True))
    with path.open("w") as out:
        out.write(",".join(["id", *(f"x_{c}" for c in range(FEATURES))]) + "\n")
        for start in range(0, rows, BLOCK):
            text = io.StringIO()
            np.savetxt(text, x[start : start + BLOCK], fmt="%.9g", delimiter=",")
            lines = text.getvalue().splitlines()
            for offset, cells in enumerate(lines):
                i = start + offset
                kind = kinds.get(i)
                lines[offset] = f"r{i},{cells}" if kind is None else bad_line(i, kind % 5)
            out.write("\n".join(lines) + "\n")
    return x, bad


def score(store_dir: Path) -> tuple[dict[str, Any], float]:
    """The S3 -> SQS event for the input, through the batch function's handler code."""
    from functions.batch.events import s3_notification, sqs_event, store_location
    from functions.batch.handler import dispatch
    from functions.batch.service import BatchService
    from functions.runtime.batch.settings import BatchSettings
    from functions.runtime.pool import ModelPool
    from functions.runtime.registry import Registry
    from functions.runtime.store import LocalStore

    store = LocalStore(store_dir)
    info = store.head(KEY)
    notification = s3_notification(store_location(store)[0], KEY, info.etag, info.size)
    began = time.perf_counter()
    response = dispatch(
        BatchService(store, ModelPool(Registry(store)), BatchSettings.from_env()),
        sqs_event([json.dumps(notification)]),
    )
    seconds = time.perf_counter() - began
    if response["batchItemFailures"]:
        raise RuntimeError(f"the batch function failed the message: {response}")
    return json.loads(store.get_bytes(f"{OUT}.summary.json")), seconds


def check_output(store_dir: Path, x: np.ndarray, bad: np.ndarray, onnx: Path) -> dict[str, Any]:
    """Scored ids against the good rows, logits against onnxruntime, errors against bad lines."""
    import onnxruntime as ort

    good = np.setdiff1d(np.arange(len(x)), bad)
    with (store_dir / OUT).open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        id_col, first = header.index("id"), header.index("pred_logits_0")
        ids, logits = [], []
        for row in reader:
            ids.append(int(row[id_col][1:]))
            logits.append(row[first : first + 3])
    scored = np.asarray(ids)
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    expected = session.run(["logits"], {"x": x[good]})[0]
    same_rows = len(scored) == len(good) and bool(np.array_equal(scored, good))
    wrong = (
        int(
            (~np.isclose(np.asarray(logits, np.float32), expected, rtol=1e-5, atol=1e-5))
            .any(axis=1)
            .sum()
        )
        if same_rows
        else -1
    )
    errors = [
        json.loads(line) for line in (store_dir / f"{OUT}.errors.jsonl").read_text().splitlines()
    ]
    reported = np.asarray([e["line"] for e in errors])
    return {
        "scored": len(scored),
        "duplicates": len(scored) - len(np.unique(scored)),
        "missing_good_rows": len(np.setdiff1d(good, scored)),
        "scored_bad_rows": len(np.intersect1d(bad, scored)),
        "wrong_predictions": wrong,
        "reported": len(errors),
        "reported_exactly_the_bad_lines": bool(np.array_equal(reported, bad + 2)),
        "every_report_says_why": all(
            isinstance(e.get("error"), str) and e["error"] for e in errors
        ),
    }


def batch_soak(work: Path, rows: int, bad_fraction: float) -> dict[str, Any]:
    """Write, score and check; counts, time and throughput."""
    store_dir = work / "store"
    onnx = publish_small(store_dir)
    path = store_dir / KEY
    path.parent.mkdir(parents=True, exist_ok=True)
    x, bad = write_input(path, rows, bad_fraction)
    summary, seconds = score(store_dir)
    checked = check_output(store_dir, x, bad, onnx)
    return {
        "rows": rows,
        "bad_rows": len(bad),
        **checked,
        "summary": {k: summary[k] for k in ("status", "rows", "scored_rows", "failed_rows")},
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
    }
