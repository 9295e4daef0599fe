"""Files as people export them, dropped into S3 (moto's server on loopback) and scored by the
batch function from the SQS message S3 sends: each scores every row it can, the same values as
the plain file, and names every row it cannot; nothing is lost.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.batch.handler import dispatch
from functions.runtime.s3store import S3Store
from tests.batch_support import (
    pool,
    publish_classifier,
    reference_logits,
    run_settings,
    service,
    sqs_for,
)

IN, OUT = "batch/iris/input", "batch/iris/output"
X = np.random.default_rng(5).normal(size=(7, 4)).astype(np.float32)
HEADER = b"id,x_0,x_1,x_2,x_3"
ROWS = [b"r%d," % i + b",".join(repr(float(v)).encode() for v in row) for i, row in enumerate(X)]
JSONL = [json.dumps({"id": i, "x": row.tolist()}).encode() for i, row in enumerate(X)]


def lines(*parts: bytes, end: bytes = b"\n") -> bytes:
    return end.join(parts) + end


# name -> (bytes, the rows of X it scores, {line: error fragment})
DIALECTS: dict[str, tuple[bytes, list[int], dict[int, str]]] = {
    "bom-crlf.csv": (b"\xef\xbb\xbf" + lines(HEADER, *ROWS, end=b"\r\n"), list(range(7)), {}),
    "trailing-blank.csv": (lines(HEADER, *ROWS) + b"\n\n", list(range(7)), {}),
    "header-only.csv": (HEADER + b"\r\n", [], {}),
    "latin1-row.csv": (
        lines(HEADER, *ROWS[:2], b"caf\xe9," + ROWS[2].split(b",", 1)[1], *ROWS[3:]),
        [0, 1, 3, 4, 5, 6],
        {4: "not valid UTF-8"},
    ),
    "quoted-newline.csv": (  # pandas' to_csv of an id holding a line break: one row
        lines(HEADER, ROWS[0], b'"two\r\nlines",' + ROWS[1].split(b",", 1)[1], *ROWS[2:]),
        list(range(7)),
        {},
    ),
    "long-row.csv": (
        lines(HEADER, ROWS[0], b"x" * (2 << 20) + b",1,2,3,4", *ROWS[1:]),
        list(range(7)),
        {3: "longer than"},
    ),
    "blank-lines.jsonl": (
        b"\n" + lines(*JSONL[:3]) + b"\n\r\n" + lines(*JSONL[3:]),
        [*range(7)],
        {},
    ),
    "no-final-newline.jsonl": (lines(*JSONL)[:-1], list(range(7)), {}),
    "one-invalid.jsonl": (
        lines(*JSONL[:2], b'{"id": 9, "x": [1, 2,', *JSONL[2:]),
        list(range(7)),
        {3: "not valid JSON"},
    ),
}


@pytest.fixture
def s3(s3_store: S3Store, tmp_path: Path) -> S3Store:
    publish_classifier(s3_store, tmp_path)
    return s3_store


def score(s3: S3Store, tmp_path: Path, name: str, data: bytes) -> dict[str, Any]:
    s3.put_bytes(f"{IN}/{name}", data)
    assert dispatch(service(s3, tmp_path, chunk_rows=3), sqs_for(s3, f"{IN}/{name}")) == {
        "batchItemFailures": []
    }
    return json.loads(s3.get_bytes(f"{OUT}/{name}.summary.json"))  # type: ignore[no-any-return]


def logits_of(s3: S3Store, name: str) -> np.ndarray:
    text = s3.get_bytes(f"{OUT}/{name}").decode()
    if name.endswith(".jsonl"):
        return np.array([json.loads(line)["pred_logits"] for line in text.splitlines()])
    body = list(csv.reader(io.StringIO(text, newline="")))[1:]
    return np.array([[float(cell) for cell in row[5:8]] for row in body]).reshape(-1, 3)


@pytest.mark.parametrize("name", DIALECTS)
def test_an_exported_file_scores_every_readable_row_and_names_the_others(
    s3: S3Store, tmp_path: Path, name: str
) -> None:
    data, scored, bad = DIALECTS[name]
    summary = score(s3, tmp_path, name, data)
    assert (summary["status"], summary["scored_rows"]) == ("succeeded", len(scored))
    assert summary["failed_rows"] == len(bad)
    errors = [json.loads(line) for line in s3.get_bytes(f"{OUT}/{name}.errors.jsonl").splitlines()]
    assert {e["line"]: e["error"] for e in errors}.keys() == bad.keys()
    for error in errors:
        assert bad[error["line"]] in error["error"]
    expected = reference_logits(tmp_path, X[scored]) if scored else np.zeros((0, 3))
    np.testing.assert_allclose(logits_of(s3, name), expected, rtol=1e-6)


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("shards", [1, 3])
def test_a_fortran_order_array_scores_as_its_c_order_twin(
    s3: S3Store, tmp_path: Path, shards: int
) -> None:
    """`np.save(df.to_numpy())` writes Fortran order (a one-dtype DataFrame's values are a
    view of its column-major block): it was refused, asking for np.ascontiguousarray."""
    table = np.asfortranarray(np.random.default_rng(3).normal(size=(11, 4)).astype(np.float32))
    assert b"'fortran_order': True" in npy(table)[:128]
    score(s3, tmp_path, "c.npy", npy(np.ascontiguousarray(table)))
    summary = score(s3, tmp_path, "f.npy", npy(table))
    assert (summary["status"], summary["scored_rows"]) == ("succeeded", 11)
    assert s3.get_bytes(f"{OUT}/f.npz") == s3.get_bytes(f"{OUT}/c.npz")
    if shards > 1:  # row ranges of a Fortran-order array: each shard reads its own rows
        from functions.runtime.batch.layout import parse_input_key
        from functions.runtime.batch.run import RunInput
        from functions.runtime.batch.shards import merge_run, plan_run, score_shard

        s3.delete(f"{OUT}/f.npy.summary.json")
        obj = parse_input_key(f"{IN}/f.npy")
        assert obj is not None
        models = pool(s3, tmp_path)
        run = RunInput(obj, s3.bucket, s3.head(f"{IN}/f.npy"))
        plan = plan_run(s3, models, run, shards, run_settings(2))
        for item in json.loads(s3.get_bytes(plan["plan_key"])):
            score_shard(s3, models, item, run_settings())
        assert merge_run(s3, plan)["scored_rows"] == 11
        assert s3.get_bytes(f"{OUT}/f.npz") == s3.get_bytes(f"{OUT}/c.npz")


def test_a_fortran_order_array_cut_short_fails_saying_so(s3: S3Store, tmp_path: Path) -> None:
    data = npy(np.asfortranarray(np.ones((6, 4), dtype=np.float32)))[:-8]
    summary = score(s3, tmp_path, "cut.npy", data)
    assert summary["status"] == "failed"
    assert "Fortran-order array cut short has no whole row" in summary["error"]
