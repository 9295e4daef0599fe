"""Rows a model answers NaN or infinity for are bad rows in batch, as they are 500s online.

The model is a real ONNX graph, `log = Log(x)`, `sqrt = Sqrt(x)`, `argmax = ArgMax(x)`
(int64): its inputs are all finite, yet a row with a zero or a negative value gets -inf or
NaN back. Each such row goes to the errors file naming the output, its other rows are scored,
and the output holds no NaN or infinity it did not mean (NPY rows are filled as unscored rows
are): in CSV, JSONL and NPY, on a directory store and on S3 (moto on loopback), in one
process, in worker processes and in shards, byte for byte the same.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from functions.batch.handler import dispatch
from functions.predict.service import service_from_env
from functions.runtime.batch.nonfinite import nonfinite_rows
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore, ObjectStore
from infra.cli.main import main
from tests import onnx_factory
from tests.batch_support import pool, read_csv, read_jsonl, service, sqs_for, two_batch_workers
from tests.functions.test_predict_events import body_of, http_event

NAME = "logs"
OUT = f"batch/{NAME}/output"
REF = f"{NAME}:1"


def log_model(path: Path) -> Path:
    """float32 x [N, 2] -> log, sqrt (float32 [N, 2]) and argmax (int64 [N])."""
    graph = helper.make_graph(
        [
            helper.make_node("Log", ["x"], ["log"]),
            helper.make_node("Sqrt", ["x"], ["sqrt"]),
            helper.make_node("ArgMax", ["x"], ["argmax"], axis=1, keepdims=0),
        ],
        "logs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [
            helper.make_tensor_value_info("log", TensorProto.FLOAT, [None, 2]),
            helper.make_tensor_value_info("sqrt", TensorProto.FLOAT, [None, 2]),
            helper.make_tensor_value_info("argmax", TensorProto.INT64, [None]),
        ],
    )
    return onnx_factory.save(graph, path)


def rows() -> np.ndarray:
    """30 rows: positive ones score; a zero gives -inf, a negative NaN. Rows 8-11 are all bad
    (a whole chunk of 4), and rows 20 and 21 hold a NaN and an infinity in two outputs."""
    x = np.random.default_rng(3).uniform(0.5, 8.0, size=(30, 2)).astype(np.float32)
    x[1] = [0.0, 1.0]
    x[2] = [4.0, -1.0]
    x[8:12, 0] = -2.0
    x[20] = [-1.0, -3.0]
    x[21] = [-0.0, 2.0]  # Log(-0) is -inf, Sqrt(-0) is -0: finite
    x[29, 1] = 0.0
    return x


X = rows()
BAD = ~(X > 0).all(axis=1)  # Log is finite only above 0, Sqrt from 0


def publish(store: ObjectStore, workdir: Path) -> Path:
    path = log_model(workdir / "logs.onnx")
    Registry(store).publish(onnx_factory.manifest_for(path, NAME, "1"), path)
    return path


def reference(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip(("log", "sqrt", "argmax"), session.run(None, {"x": x}), strict=True))


def inputs(fmt: str) -> bytes:
    """The rows as CSV or JSONL (with an id each and one unreadable line) or NPY."""
    if fmt == "npy":
        buffer = io.BytesIO()
        np.save(buffer, X)
        return buffer.getvalue()
    if fmt == "csv":
        lines = ["id,x_0,x_1", *(f"r{i},{a!r},{b!r}" for i, (a, b) in enumerate(X.tolist()))]
        lines.insert(15, "oops,1,abc")  # a bad input row among the bad output rows
    else:
        lines = [json.dumps({"id": f"r{i}", "x": row}) for i, row in enumerate(X.tolist())]
        lines.insert(14, '{"id": "oops", "x": [1, "abc"]}')
    return ("\n".join(lines) + "\n").encode()


def score(store: ObjectStore, workdir: Path, fmt: str, chunk_rows: int = 4) -> dict:
    key = f"batch/{NAME}/input/rows.{fmt}"
    store.put_bytes(key, inputs(fmt))
    assert dispatch(service(store, workdir, chunk_rows), sqs_for(store, key)) == {
        "batchItemFailures": []
    }
    return json.loads(store.get_bytes(f"{OUT}/rows.{fmt}.summary.json"))


def errors(store: ObjectStore, name: str) -> list[dict]:
    return [
        json.loads(line)
        for line in store.get_bytes(f"{OUT}/{name}.errors.jsonl").split(b"\n")
        if line
    ]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "npy"])
def test_rows_the_model_answers_nan_or_inf_for_are_reported_and_the_rest_scored(
    store, tmp_path, fmt
):
    path = publish(store, tmp_path)
    summary = score(store, tmp_path, fmt)

    text = fmt != "npy"
    bad = np.flatnonzero(BAD).tolist()
    assert summary["status"] == "succeeded"
    assert summary["rows"] == len(X) + text
    assert (summary["scored_rows"], summary["failed_rows"]) == (len(X) - len(bad), len(bad) + text)
    found = errors(store, f"rows.{fmt}")
    key = "line" if text else "row"
    # Text lines count from 1 with the header (CSV) and the unreadable line (after row 13).
    line = {i: i + 1 + (fmt == "csv") + (i >= 14) for i in range(len(X))} if text else None
    oops = {"csv": 16, "jsonl": 15}.get(fmt)  # the unreadable line
    model_errors = [e for e in found if e[key] != oops]
    assert [e[key] for e in model_errors] == [line[i] if line else i for i in bad]
    assert [e[key] for e in found] == sorted(e[key] for e in found)
    reasons = {i: e["error"] for i, e in zip(bad, model_errors, strict=True)}
    suffix = (
        " for this row; a prediction must be finite (the predict API refuses such a row too), "
        "so it was not scored"
    )
    assert reasons[1] == f"model {REF} answered -infinity in output 'log' value 0{suffix}"
    assert reasons[2] == (
        f"model {REF} answered NaN in output 'log' value 1, NaN in output 'sqrt' value 1{suffix}"
    )
    assert reasons[20] == (
        f"model {REF} answered NaN in output 'log' value 0, NaN in output 'sqrt' value 0{suffix}"
    )
    assert reasons[21] == f"model {REF} answered -infinity in output 'log' value 0{suffix}"
    if text:
        assert [e["error"] for e in found if e[key] == oops] == [
            "column 'x_1' is not a number: 'abc'"
            if fmt == "csv"
            else "input 'x' must hold float32 numbers; got text"
        ]
    check_output(store, fmt, reference(path, X))


def check_output(store: ObjectStore, fmt: str, expected: dict[str, np.ndarray]) -> None:
    """Good rows hold the model's answer; bad ones are absent (text) or filled (NPY)."""
    good = np.flatnonzero(~BAD)
    if fmt == "npy":
        arrays = np.load(io.BytesIO(store.get_bytes(f"{OUT}/rows.npz")))
        assert set(arrays.files) == {"log", "sqrt", "argmax"}
        assert np.isnan(arrays["log"][BAD]).all() and np.isnan(arrays["sqrt"][BAD]).all()
        assert (arrays["argmax"][BAD] == 0).all()  # filled as unscored rows are
        for name in ("log", "sqrt", "argmax"):
            np.testing.assert_array_equal(arrays[name][good], expected[name][good])
        return
    body = store.get_bytes(f"{OUT}/rows.{fmt}").decode()
    assert not any(word in body.lower() for word in ("nan", "inf"))
    out = (
        read_csv(store, f"{OUT}/rows.csv")
        if fmt == "csv"
        else read_jsonl(store, f"{OUT}/rows.jsonl")
    )
    assert [r["id"] for r in out] == [f"r{i}" for i in good]
    logs = (
        [[float(r["pred_log_0"]), float(r["pred_log_1"])] for r in out]
        if fmt == "csv"
        else [r["pred_log"] for r in out]
    )
    np.testing.assert_array_equal(np.float32(logs), expected["log"][good])


def test_a_file_the_model_answers_nan_for_on_every_row_fails(local_store, tmp_path):
    publish(local_store, tmp_path)
    key = f"batch/{NAME}/input/all.csv"
    local_store.put_bytes(key, b"x_0,x_1\n-1,2\n0,0\n")
    dispatch(service(local_store, tmp_path), sqs_for(local_store, key))
    summary = json.loads(local_store.get_bytes(f"{OUT}/all.csv.summary.json"))
    assert (summary["status"], summary["failed_rows"]) == ("failed", 2)
    assert summary["error"] == f"none of the 2 rows could be scored; see {OUT}/all.csv.errors.jsonl"
    assert [e["line"] for e in errors(local_store, "all.csv")] == [2, 3]


def test_the_predict_api_refuses_exactly_the_rows_batch_reports(local_store, tmp_path):
    """One request per row through the predict handler (API Gateway v2 events): a 500 for
    each row batch lists, the model's answer for every other one."""
    publish(local_store, tmp_path)
    score(local_store, tmp_path, "npy")
    batch_bad = {e["row"] for e in errors(local_store, "rows.npy")}
    predict = service_from_env({"AIAAS_MODEL": NAME}, pool(local_store, tmp_path / "p"))
    online_bad = set()
    for i, row in enumerate(X.tolist()):
        body = json.dumps({"inputs": [row]})
        response = predict.handle(http_event("POST", f"/models/{NAME}/predict", body))
        if response["statusCode"] == 500:
            online_bad.add(i)
            assert body_of(response) == {
                "error": f"model {REF} answered non-finite values (NaN or infinity)"
            }
        else:
            assert response["statusCode"] == 200, response
    assert online_bad == batch_bad == set(np.flatnonzero(BAD).tolist())


def test_outputs_that_cannot_be_nan_cost_nothing_and_flag_nothing():
    labels = np.array([0, 3, 1], dtype=np.int64)
    assert nonfinite_rows({"label": labels, "flag": labels > 0}, 3) is None
    half = np.array([[1.0, np.inf], [0.5, 2.0], [65504.0, 1.0]], dtype=np.float16)
    assert nonfinite_rows({"h": half, "label": labels}, 3).tolist() == [True, False, False]
    big = np.array([[3e38], [1.0]], dtype=np.float32)  # finite, though its sum of squares is not
    assert nonfinite_rows({"y": big}, 2) is None


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Two worker processes for any text input, in blocks of ~300 bytes (block edges fall
    inside chunks of bad rows), started for this test as tests/runtime/test_batch_workers.py
    does."""
    yield from two_batch_workers(monkeypatch)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_worker_processes_report_the_same_rows_as_one_process(local_store, tmp_path, workers, fmt):
    publish(local_store, tmp_path)
    with pytest.MonkeyPatch.context() as one_process:
        one_process.setenv("AIAAS_BATCH_WORKERS", "1")
        score(local_store, tmp_path, fmt)
    expected = finished(local_store, f"rows.{fmt}")
    local_store.delete(f"{OUT}/rows.{fmt}.summary.json")  # else the same ETag is a re-delivery

    summary = score(local_store, tmp_path, fmt)

    found = finished(local_store, f"rows.{fmt}")
    assert found[1] == expected[1]  # the same bad rows, numbered across blocks
    # onnxruntime's Log may differ by one ulp with a row's place in its batch (vectorised
    # lanes, then a scalar tail), and blocks cut the batches elsewhere: compare the numbers.
    (words, numbers), (expected_words, expected_numbers) = cells(found[0]), cells(expected[0])
    assert words == expected_words
    np.testing.assert_allclose(numbers, expected_numbers, rtol=1e-6)
    assert summary["failed_rows"] == int(BAD.sum()) + 1


@pytest.mark.parametrize("fmt", ["csv", "npy"])
def test_aiaas_batch_with_shards_reports_the_same_rows(tmp_path, monkeypatch, capsys, fmt):
    """`aiaas batch --shards 3` (plan, shards in a process pool, merge) against one run."""
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    store = LocalStore(tmp_path / "store")
    publish(store, tmp_path)
    data = tmp_path / f"rows.{fmt}"
    data.write_bytes(inputs(fmt))
    base = ["--store", store.uri, "batch", NAME, str(data), "--chunk-rows", "4"]
    assert main([*base, "--name", f"one.{fmt}"]) == 0
    assert main([*base, "--name", f"three.{fmt}", "--shards", "3"]) == 0
    out = capsys.readouterr().out
    scored = f"scored {int((~BAD).sum())} of {len(X) + (fmt == 'csv')} rows with {REF} in "
    assert out.count(scored) == 2
    one, three = finished(store, f"one.{fmt}"), finished(store, f"three.{fmt}")
    assert three == one
    assert b"answered NaN in output 'log' value 1" in one[1]


def finished(store: ObjectStore, name: str) -> tuple[bytes, bytes]:
    """The output and errors of `name` (NPY: the arrays' bytes, the archive has a date)."""
    output = f"{OUT}/{name.replace('.npy', '.npz')}"
    body = store.get_bytes(output)
    if name.endswith(".npy"):
        arrays = np.load(io.BytesIO(body))
        body = b"".join(arrays[n].tobytes() for n in sorted(arrays.files))
    return body, store.get_bytes(f"{OUT}/{name}.errors.jsonl")


def cells(body: bytes) -> tuple[list[str], np.ndarray]:
    """An output's words (CSV cells, JSON keys) and numbers, apart."""
    text = body.decode()
    for mark in "{}[]\n":
        text = text.replace(mark, ",")
    words, numbers = [], []
    for cell in text.split(","):
        try:
            numbers.append(float(cell))
        except ValueError:
            words.append(cell.strip())
    return words, np.array(numbers)
