"""A CR inside a quoted CSV field is text: scored as the csv module reads it, echoed as sent.

The model is an identity on strings, so its `pred_y` column is exactly the text it was given.
Batch had deleted every CR of a CRLF file (and of any line): `"line one\rline two"` was scored
and written back as "line oneline two", and an unquoted `a\rb` was scored as "ab".
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from onnx import TensorProto

from functions.batch.handler import dispatch
from functions.runtime.manifest import ModelManifest
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectStore
from tests import onnx_factory
from tests.batch_support import run, service, sqs_for

MODEL = "echo"
CELLS = [  # (a cell as written in the file, the text csv.reader reads from it)
    (b'"line one\rline two"', "line one\rline two"),
    (b'"ends in a CR\r"', "ends in a CR\r"),
    (b'"\rstarts with one"', "\rstarts with one"),
    (b"plain words", "plain words"),
    (b'"a ""quoted""\r\rword"', 'a "quoted"\r\rword'),
]
LINES = [f"{i},".encode() + cell for i, (cell, _) in enumerate(CELLS)]
FILES = {  # name -> the file's bytes
    "crlf.csv": b"id,x\r\n" + b"".join(line + b"\r\n" for line in LINES),
    "lf.csv": b"id,x\n" + b"".join(line + b"\n" for line in LINES),
    "no-final-line-break.csv": b"\r\n".join([b"id,x", *LINES]),
    "bom.csv": b"\xef\xbb\xbfid,x\r\n" + b"".join(line + b"\r\n" for line in LINES),
    "mixed.csv": b"id,x\n"
    + b"".join(line + (b"\r\n" if i % 2 else b"\n") for i, line in enumerate(LINES)),
}
# Quoted fields holding CRLF and LF are rows (records span lines); a CR outside quotes is
# not, reported on its line (the 6th: the two records before it took two lines each).
BAD = b'id,x\r\n0,"a\r\nb"\r\n1,"c\nd"\r\n2,line one\rline two\r\n3,"fine\r"\r\n'
BAD_ERRORS = [
    {
        "line": 6,
        "error": "not a valid CSV row: a carriage return (CR) outside quotes (lines end in LF "
        "or CRLF; a CR that is part of a value is written inside a quoted field)",
    }
]


@pytest.fixture(scope="module")
def echo_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModelManifest]:
    folder = tmp_path_factory.mktemp("echo")
    path = onnx_factory.identity(folder / "echo.onnx", TensorProto.STRING, ["N"])
    return path, onnx_factory.manifest_for(path, MODEL, "1")


def published(store: ObjectStore, echo_model: tuple[Path, ModelManifest]) -> ObjectStore:
    Registry(store).publish(echo_model[1], echo_model[0])
    return store


def check_output(data: bytes, output: bytes) -> None:
    """Every row as csv.reader reads it, scored as that text; each line echoed byte for byte."""
    read = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert read == [["id", "x"], *([str(i), text] for i, (_, text) in enumerate(CELLS))]
    bom = b"\xef\xbb\xbf"  # an input's byte order mark is written back (hunt_batch2 3)
    assert output.startswith(bom) == data.startswith(bom)
    out = list(csv.reader(io.StringIO(output.decode("utf-8-sig"), newline="")))
    assert out == [["id", "x", "pred_y"], *([*row, row[1]] for row in read[1:])]
    lines = output.split(b"\n")
    assert lines[-1] == b"" and len(lines) == len(LINES) + 2
    for line, echoed in zip(LINES, lines[1:-1], strict=True):
        assert echoed.startswith(line + b",")  # the input line, then the pred_y cell


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("chunk_rows", [2, 4096])
def test_quoted_carriage_returns_are_scored_and_echoed_as_sent(
    echo_model, tmp_path, name, chunk_rows
):
    store = published(LocalStore(tmp_path / "store"), echo_model)
    key = f"batch/{MODEL}/input/{name}"
    store.put_bytes(key, FILES[name])
    summary = run(store, tmp_path, key, chunk_rows=chunk_rows)
    assert (summary["scored_rows"], summary["failed_rows"]) == (len(CELLS), 0), summary
    check_output(FILES[name], store.get_bytes(summary["output"]))


def test_rows_batch_cannot_read_are_reported_on_s3_events(echo_model, s3_store: S3Store, tmp_path):
    store = published(s3_store, echo_model)
    for name, data in (("crlf.csv", FILES["crlf.csv"]), ("bad.csv", BAD)):
        key = f"batch/{MODEL}/input/{name}"
        store.put_bytes(key, data)
        assert dispatch(service(store, tmp_path, 2), sqs_for(store, key)) == {
            "batchItemFailures": []
        }
    check_output(FILES["crlf.csv"], store.get_bytes(f"batch/{MODEL}/output/crlf.csv"))
    out = store.get_bytes(f"batch/{MODEL}/output/bad.csv")
    assert out == b'id,x,pred_y\n0,"a\r\nb","a\r\nb"\n1,"c\nd","c\nd"\n3,"fine\r","fine\r"\n'
    errors = store.get_bytes(f"batch/{MODEL}/output/bad.csv.errors.jsonl").decode()
    reported = [json.loads(line) for line in errors.splitlines()]
    assert [r["line"] for r in reported] == [e["line"] for e in BAD_ERRORS]
    for got, want in zip(reported, BAD_ERRORS, strict=True):
        assert got["error"].startswith(want["error"])
