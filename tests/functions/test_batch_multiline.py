"""Customer reviews whose text holds line breaks (quoted fields over several lines, as pandas'
to_csv, Excel and Google Sheets write them) are scored as csv.reader reads them, on every path.

The model is an identity on strings, so its `pred_y` column is exactly the text it was given.
Each such review was two bad rows; now it is one row, echoed byte for byte, and an error names
the line its record starts on. Every path writes what the in-process run writes.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest
from onnx import TensorProto

from functions.batch.handler import dispatch
from functions.runtime.batch.layout import parse_input_key
from functions.runtime.batch.run import RunInput
from functions.runtime.batch.shards import merge_run, plan_run, score_shard
from functions.runtime.manifest import ModelManifest
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectStore
from tests import onnx_factory
from tests.batch_support import pool, run, run_settings, service, sqs_for, two_batch_workers

MODEL = "echo"
IN, OUT = f"batch/{MODEL}/input", f"batch/{MODEL}/output"
TEXTS = [
    "great product\nwould buy again",
    "one line",
    'said "meh"\r\nthen\n\nleft',  # CRLF, a blank line and doubled quotes inside
    "a, b and c",
]
BAD = b"7,too,many,fields"
UNCLOSED = b'8,"never closed'


def reviews() -> bytes:
    """40 reviews (every other one over lines), a bad row, then an unclosed quote and a row."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")  # pandas' to_csv
    writer.writerow(["id", "x"])
    writer.writerows([i, TEXTS[i % len(TEXTS)] + f" #{i}"] for i in range(40))
    head, tail = buffer.getvalue().encode().split(b"\n20,", 1)
    return head + b"\n" + BAD + b"\n20," + tail + UNCLOSED + b"\n9,after it\n"


def line_of(data: bytes, record: bytes) -> int:
    return data[: data.index(record)].count(b"\n") + 1


@pytest.fixture(scope="module")
def echo_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModelManifest]:
    folder = tmp_path_factory.mktemp("echo")
    path = onnx_factory.identity(folder / "echo.onnx", TensorProto.STRING, ["N"])
    return path, onnx_factory.manifest_for(path, MODEL, "1")


@pytest.fixture
def store(tmp_path: Path, echo_model: tuple[Path, ModelManifest]) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    Registry(store).publish(echo_model[1], echo_model[0])
    return store


def results(store: ObjectStore, name: str = "r.csv") -> tuple[bytes, list[dict], dict]:
    summary = json.loads(store.get_bytes(f"{OUT}/{name}.summary.json"))
    out, errors = store.get_bytes(summary["output"]), store.get_bytes(summary["errors"])
    for suffix in ("", ".errors.jsonl", ".summary.json"):
        store.delete(f"{OUT}/{name}{suffix}")
    counts = {k: summary[k] for k in ("status", "rows", "scored_rows", "failed_rows")}
    return out, [json.loads(e) for e in errors.splitlines()], counts


@pytest.fixture
def expected(store: LocalStore, tmp_path: Path) -> tuple[bytes, list[dict], dict]:
    store.put_bytes(f"{IN}/r.csv", reviews())
    run(store, tmp_path, f"{IN}/r.csv", chunk_rows=4)
    out = results(store)
    store.delete(f"{IN}/r.csv")
    assert out[2]["scored_rows"] == 41  # every review one row, on every path compared to it
    return out


def test_a_review_over_lines_is_one_row_echoed_as_read(expected):
    data = reviews()
    out, errors, counts = expected
    assert counts == {"status": "succeeded", "rows": 43, "scored_rows": 41, "failed_rows": 2}
    assert [e["line"] for e in errors] == [line_of(data, BAD), line_of(data, UNCLOSED)]
    assert (
        line_of(data, UNCLOSED) == 83
    )  # header, bad row, 40 reviews: 20 over 1 line, 10 over 2, 10 over 4
    assert errors[0]["error"] == "has 4 fields; the header has 2"
    assert "quotes do not pair up" in errors[1]["error"]
    # csv.reader reads the rest of the file into the unclosed field; batch goes on after it.
    readable = data.replace(UNCLOSED + b"\n", b"").decode()
    good = [row for row in csv.reader(io.StringIO(readable, newline="")) if len(row) == 2]
    assert good[-1] == ["9", "after it"]
    assert list(csv.reader(io.StringIO(out.decode(), newline=""))) == [
        ["id", "x", "pred_y"],
        *([*row, row[1]] for row in good[1:]),
    ]
    for record in (b'\n0,"great product\nwould buy again #0"', b'\n2,"said ""meh""\r\nthen\n\n'):
        assert record in data and record in out  # echoed byte for byte


def test_workers_write_what_one_process_writes(store, tmp_path, expected, monkeypatch):
    for _ in two_batch_workers(monkeypatch):  # blocks of 300 bytes: edges inside reviews
        store.put_bytes(f"{IN}/r.csv", reviews())
        run(store, tmp_path, f"{IN}/r.csv", chunk_rows=4)
        assert results(store) == expected


@pytest.mark.parametrize("shards", [3, 7])
def test_shards_merge_to_what_one_process_writes(store, tmp_path, expected, shards):
    store.put_bytes(f"{IN}/r.csv", reviews())
    obj = parse_input_key(f"{IN}/r.csv")
    assert obj is not None
    models = pool(store, tmp_path)
    run_input = RunInput(obj, "aiaas-local", store.head(f"{IN}/r.csv"))
    plan = plan_run(store, models, run_input, shards, run_settings(4))
    items = json.loads(store.get_bytes(plan["plan_key"]))
    for start in (item["start"] for item in items[1:]):  # never inside a record
        assert reviews()[start - 1 : start] == b"\n" and reviews()[:start].count(b'"') % 2 == 0
    for item in items:
        score_shard(store, models, item, run_settings())
    merge_run(store, plan)
    assert results(store) == expected


def test_a_gzip_input_reads_the_same_records(store, tmp_path, expected):
    store.put_bytes(f"{IN}/r.csv.gz", gzip.compress(reviews()))
    run(store, tmp_path, f"{IN}/r.csv.gz", chunk_rows=4)
    assert results(store, "r.csv.gz") == expected


def test_the_s3_event_path_reads_the_same_records(s3_store: S3Store, tmp_path, echo_model):
    Registry(s3_store).publish(echo_model[1], echo_model[0])
    local = LocalStore(tmp_path / "local")
    Registry(local).publish(echo_model[1], echo_model[0])
    local.put_bytes(f"{IN}/r.csv", reviews())
    run(local, tmp_path, f"{IN}/r.csv", chunk_rows=4)
    s3_store.put_bytes(f"{IN}/r.csv", reviews())
    event = sqs_for(s3_store, f"{IN}/r.csv")
    assert dispatch(service(s3_store, tmp_path, 4), event) == {"batchItemFailures": []}
    scored = results(s3_store)
    assert scored == results(local) and scored[2]["scored_rows"] == 41


def note_file(line_end: str = "\n") -> bytes:
    """pandas' to_csv of a frame whose column name holds a line break: the header is quoted
    over two lines (RFC 4180), then one row a line from line 3."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator=line_end)
    writer.writerow(["id", f"note{line_end}(free text)", "x"])
    writer.writerows([i, "n", f"text {i}"] for i in range(6))
    writer.writerow([6, "n", "a\nb"])
    return buffer.getvalue().encode()


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_a_header_with_a_line_break_in_a_quoted_name_is_one_record(store, tmp_path, line_end):
    """Before: its first line was the header (`id,"note`), refused as lacking column x."""
    data = note_file(line_end)
    assert data.startswith(f'id,"note{line_end}(free text)",x{line_end}'.encode())
    for name in ("n.csv", "g.csv.gz"):
        store.put_bytes(f"{IN}/{name}", gzip.compress(data) if name.endswith(".gz") else data)
        run(store, tmp_path, f"{IN}/{name}", chunk_rows=4)
        out, errors, counts = results(store, name)
        assert errors == [] and counts == {
            "status": "succeeded", "rows": 7, "scored_rows": 7, "failed_rows": 0
        }  # fmt: skip
        header, *rows = list(csv.reader(io.StringIO(out.decode(), newline="")))
        assert header == ["id", f"note{line_end}(free text)", "x", "pred_y"]
        assert [row[3] for row in rows] == [*(f"text {i}" for i in range(6)), "a\nb"]


def test_a_bad_row_after_a_header_over_lines_names_its_own_line(store, tmp_path):
    data = note_file().replace(b"3,n,text 3\n", b"3,n,text 3,extra\n")
    store.put_bytes(f"{IN}/n.csv", data)
    run(store, tmp_path, f"{IN}/n.csv", chunk_rows=4)
    one = results(store, "n.csv")
    assert one[2]["failed_rows"] == 1 and [e["line"] for e in one[1]] == [6]
    # Shards cut inside the header: moved past it, and past the first chunk (the header and 3
    # rows), which the first shard holds whole.
    store.put_bytes(f"{IN}/n.csv", data)
    obj = parse_input_key(f"{IN}/n.csv")
    assert obj is not None
    models = pool(store, tmp_path)
    run_input = RunInput(obj, "aiaas-local", store.head(f"{IN}/n.csv"))
    plan = plan_run(store, models, run_input, 9, run_settings(4))  # a cut at byte 11
    items = json.loads(store.get_bytes(plan["plan_key"]))
    assert [item["start"] for item in items][:2] == [0, data.index(b"3,n")]
    for item in items:
        score_shard(store, models, item, run_settings())
    merge_run(store, plan)
    assert results(store, "n.csv") == one


def test_a_text_over_128_kib_is_one_row_echoed_as_read(store, tmp_path):
    """csv refuses a field over 128 KiB by default: such a review was a failed row ("field
    larger than field limit"), while the served model reads the same text from JSON."""
    long = "word, " * 30_000  # 180 kB, within AIAAS_BATCH_MAX_LINE_BYTES
    texts = [long, f'said "{long}"', f"{long}\nover lines", "short"]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "x"])
    writer.writerows(enumerate(texts))
    store.put_bytes(f"{IN}/long.csv", buffer.getvalue().encode())
    run(store, tmp_path, f"{IN}/long.csv", chunk_rows=4)
    out, errors, counts = results(store, "long.csv")
    assert errors == [] and counts["scored_rows"] == len(texts)
    rows = list(csv.reader(io.StringIO(out.decode(), newline="")))
    assert [row[2] for row in rows[1:]] == texts
