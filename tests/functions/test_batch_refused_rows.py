"""Rows a model's node refuses are bad rows in batch and 422s online; a model refusing every
row fails the run.

Two real models: scikit-learn's Pipeline of a ColumnTransformer whose OneHotEncoder keeps its
default handle_unknown='error' (skl2onnx, default options), which onnxruntime fails on for a
category the fit never saw; and `y = Flatten(Gather(table, i + offset))`, which fails for an
index past its 5-row table (with offset 10: for every row, a broken model). onnxruntime fails
the whole run for one such row; batch splits the chunk to find it and scores the others, in
one process, in worker processes, in shards and through the S3-event handler.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.batch.handler import dispatch
from functions.predict.service import service_from_env
from functions.runtime.batch.layout import parse_input_key
from functions.runtime.batch.run import RunInput, run_object
from functions.runtime.batch.shards import merge_run, plan_run, score_shard
from functions.runtime.ort_errors import refusal
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore, ObjectStore
from infra.cli.main import main
from tests import onnx_factory
from tests.batch_support import (
    pool,
    read_csv,
    run_settings,
    service,
    sqs_for,
    two_batch_workers,
)
from tests.functions.test_predict_events import body_of, http_event
from tests.sklearn_models import region_frame, region_pipeline

NAME = "lookup"
OUT = f"batch/{NAME}/output"
TABLE = np.arange(10, dtype=np.float32).reshape(5, 2)
# Rows 3, 9 and 10 hold an index past the table; chunks of 4 rows: 8-11 is a chunk of two bad
# rows and two good ones, and rows 12-15 are a chunk whose every row is bad (it comes after
# rows were scored, so its rows are reported, not the run failed).
INDICES = np.array([0, 1, 2, 7, 4, 3, 2, 1, 0, 5, -9, 4, 6, 8, 5, 9, 1, 2], dtype=np.int64)
BAD = (INDICES < -5) | (INDICES > 4)
OUT_OF_RANGE = (
    "Gather: indices element out of data bounds, idx={} must be within the inclusive range [-5,4]"
)
# The input and value the OneHotEncoder refused (onnxruntime names only its node).
UNKNOWN = (
    "input 'region': 'west' is not a category the model was trained on (it knows 3: 'east', "
    "'north', 'south'); scikit-learn's OneHotEncoder(handle_unknown='ignore') exports a model "
    "that encodes an unseen category as zeros"
)


def lookup_model(path: Path, offset: int = 0) -> Path:
    """int64 i [N, 1] -> float32 y [N, 2]: row i + offset of a 5-row table."""
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["i", "offset"], ["shifted"]),
            helper.make_node("Gather", ["table", "shifted"], ["rows"], axis=0),
            helper.make_node("Flatten", ["rows"], ["y"], axis=1),
        ],
        "lookup",
        [helper.make_tensor_value_info("i", TensorProto.INT64, [None, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        [
            numpy_helper.from_array(TABLE, "table"),
            numpy_helper.from_array(np.array(offset, dtype=np.int64), "offset"),
        ],
    )
    return onnx_factory.save(graph, path)


def publish(store: ObjectStore, workdir: Path, offset: int = 0) -> None:
    path = lookup_model(workdir / f"lookup{offset}.onnx", offset)
    Registry(store).publish(onnx_factory.manifest_for(path, NAME, "1"), path)


def inputs(fmt: str) -> bytes:
    if fmt == "npy":
        buffer = io.BytesIO()
        np.save(buffer, INDICES[:, None])
        return buffer.getvalue()
    if fmt == "csv":
        return ("id,i\n" + "".join(f"r{n},{i}\n" for n, i in enumerate(INDICES))).encode()
    return "".join(
        json.dumps({"id": f"r{n}", "i": [int(i)]}) + "\n" for n, i in enumerate(INDICES)
    ).encode()


def score(store: ObjectStore, workdir: Path, fmt: str, name: str = "rows") -> dict:
    key = f"batch/{NAME}/input/{name}.{fmt}"
    store.put_bytes(key, inputs(fmt))
    failures = dispatch(service(store, workdir, chunk_rows=4), sqs_for(store, key))
    assert failures == {"batchItemFailures": []}
    return json.loads(store.get_bytes(f"{OUT}/{name}.{fmt}.summary.json"))


def errors(store: ObjectStore, name: str) -> list[dict]:
    body = store.get_bytes(f"{OUT}/{name}.errors.jsonl")
    return [json.loads(line) for line in body.splitlines()]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "npy"])
def test_the_rows_a_node_refuses_are_bad_rows_and_the_others_are_scored(store, tmp_path, fmt):
    publish(store, tmp_path)

    summary = score(store, tmp_path, fmt)

    bad = np.flatnonzero(BAD).tolist()
    assert (summary["status"], summary["scored_rows"]) == ("succeeded", len(INDICES) - len(bad))
    key, first = ("row", 0) if fmt == "npy" else ("line", 1 + (fmt == "csv"))
    assert errors(store, f"rows.{fmt}") == [
        {key: i + first, "error": f"the model refused this row: {OUT_OF_RANGE.format(INDICES[i])}"}
        for i in bad
    ]
    good = np.flatnonzero(~BAD)
    if fmt == "npy":
        scored = np.load(io.BytesIO(store.get_bytes(f"{OUT}/rows.npz")))["y"]
        np.testing.assert_array_equal(scored[good], TABLE[INDICES[good]])
        assert np.isnan(scored[BAD]).all()
    elif fmt == "csv":
        out = read_csv(store, f"{OUT}/rows.csv")
        assert [r["id"] for r in out] == [f"r{i}" for i in good]
        values = [[float(r["pred_y_0"]), float(r["pred_y_1"])] for r in out]
        np.testing.assert_array_equal(values, TABLE[INDICES[good]])


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from two_batch_workers(monkeypatch)


def test_worker_processes_report_the_same_rows_and_fail_a_broken_model_alike(
    local_store, tmp_path, workers
):
    publish(local_store, tmp_path)
    with pytest.MonkeyPatch.context() as one_process:
        one_process.setenv("AIAAS_BATCH_WORKERS", "1")
        score(local_store, tmp_path, "csv", "one")
    assert score(local_store, tmp_path, "csv", "two")["scored_rows"] == int((~BAD).sum())
    assert errors(local_store, "two.csv") == errors(local_store, "one.csv")
    assert local_store.get_bytes(f"{OUT}/two.csv") == local_store.get_bytes(f"{OUT}/one.csv")

    broken = LocalStore(tmp_path / "broken")
    publish(broken, tmp_path, offset=10)
    summary = score(broken, tmp_path, "csv")  # a final failure: the message is not retried
    assert summary["status"] == "failed"
    assert summary["error"].startswith(f"model {NAME}:1 refused every one of the ")
    assert "(the first: Gather: indices element out of data bounds, idx=10 " in summary["error"]


@pytest.mark.parametrize("fmt", ["csv", "npy"])
def test_a_model_that_refuses_every_row_fails_the_run_with_its_reason(local_store, tmp_path, fmt):
    publish(local_store, tmp_path, offset=10)

    summary = score(local_store, tmp_path, fmt)

    assert summary["status"] == "failed"
    rows = {"csv": 3, "npy": 4}[fmt]  # a chunk's: CSV's first chunk of 4 lines has the header
    assert summary["error"] == (
        f"model {NAME}:1 refused every one of the {rows} rows it was given before scoring any "
        f"(the first: {OUT_OF_RANGE.format(10)}); a model that fails on every row is broken, "
        "or these rows all hold values it was not built for: nothing was scored"
    )
    assert not local_store.exists(f"{OUT}/rows.{fmt}")


def test_aiaas_batch_and_shards_score_all_but_the_unseen_category_which_predict_refuses(
    tmp_path, monkeypatch, capsys
):
    """The reported case with the real tools: `aiaas publish` of a skl2onnx export, `aiaas
    batch` in one process and in 2 shards, and the predict handler (simple JSON, OIP v2)."""
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    pipeline, onnx_bytes = region_pipeline()
    (tmp_path / "region.onnx").write_bytes(onnx_bytes)
    store = LocalStore(tmp_path / "store")
    assert (
        main(["--store", store.uri, "publish", str(tmp_path / "region.onnx"), "--name", "wine"])
        == 0
    )
    frame = region_frame(12)
    frame.loc[5, "region"] = "west"
    frame.to_csv(tmp_path / "rows.csv", index=False)
    base = ["--store", store.uri, "batch", "wine", str(tmp_path / "rows.csv"), "--chunk-rows", "8"]

    assert main([*base, "--name", "one.csv"]) == 0
    assert main([*base, "--name", "two.csv", "--shards", "2"]) == 0

    assert capsys.readouterr().out.count("scored 11 of 12 rows with wine:1 in ") == 2
    found = {
        name: (store.get_bytes(f"batch/wine/output/{name}"), errors_of(store, name))
        for name in ("one.csv", "two.csv")
    }
    assert found["two.csv"] == found["one.csv"]
    assert found["one.csv"][1] == [{"line": 7, "error": f"the model refused this row: {UNKNOWN}"}]
    out = read_csv(store, "batch/wine/output/one.csv")
    good = frame.drop(index=5)
    assert [r["pred_label"] for r in out] == [str(c) for c in pipeline.predict(good)]

    predict = service_from_env({"AIAAS_MODEL": "wine"}, pool(store, tmp_path / "p"))
    row = frame.iloc[5]
    simple = {"inputs": {c: [[row[c]]] for c in frame.columns}}
    oip = {
        "inputs": [
            {
                "name": c,
                "shape": [1, 1],
                "datatype": "BYTES" if c == "region" else "FP32",
                "data": [row[c]],
            }
            for c in frame.columns
        ]
    }
    for path, body in (("/models/wine/predict", simple), ("/v2/models/wine/infer", oip)):
        response = predict.handle(http_event("POST", path, json.dumps(body, default=float)))
        assert (response["statusCode"], body_of(response)) == (
            422,
            {"error": f"the model refused these inputs: {UNKNOWN}"},
        )


def errors_of(store: ObjectStore, name: str) -> list[dict]:
    body = store.get_bytes(f"batch/wine/output/{name}.errors.jsonl")
    return [json.loads(line) for line in body.splitlines()]


def test_the_reason_leaves_out_onnxruntime_internals_and_memory_is_no_refusal():
    internal = (
        "[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while running Reshape "
        "node. Name:'r' Status Message: /onnxruntime_src/onnxruntime/core/providers/cpu/tensor/"
        "reshape_helper.h:91 onnxruntime::ReshapeHelper::ReshapeHelper(const "
        "onnxruntime::TensorShape&, onnxruntime::TensorShapeVector&, bool) input_shape_size == "
        "requested_shape_size was false. The input tensor cannot be reshaped to the requested "
        "shape. Input shape:{2,3}, requested shape:{5}\n"
    )
    found = refusal(RuntimeError(internal))
    assert found is not None and found.status == 422
    assert found.reason == (
        "Reshape: The input tensor cannot be reshaped to the requested shape. Input "
        "shape:{2,3}, requested shape:{5}"
    )
    # A location followed by a bare function name: the name was left in the caller's 422.
    concat = (
        "[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while running Concat "
        "node. Name:'c' Status Message: concatbase.h:135 PrepareForComputeImpl Non concat axis "
        "dimensions must match: Axis 0 has mismatched dimensions of 2 and 3"
    )
    found = refusal(RuntimeError(concat))
    assert found is not None and found.reason == (
        "Concat: Non concat axis dimensions must match: Axis 0 has mismatched dimensions of 2 and 3"
    )
    memory = internal.replace("/onnxruntime_src", "bad_alloc /onnxruntime_src")
    engine = internal.replace(": 1 : FAIL :", ": 5 : ENGINE_ERROR :")
    for text in (memory, engine, "[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Invalid rank"):
        assert refusal(RuntimeError(text)) is None


def test_a_shard_whose_every_row_is_refused_reports_them_as_one_process_does(local_store, tmp_path):
    """4 good rows, then 4 a node refuses: in 2 shards the second holds only refused rows. Its
    own first chunk refused whole failed the run that one process scores (4 of 8)."""
    publish(local_store, tmp_path)
    data = b"id,i\n" + b"".join(
        b"r%d,%d\n" % (n, i) for n, i in enumerate([0, 1, 2, 3, 7, 8, 9, 7])
    )
    models = pool(local_store, tmp_path)
    found = []
    for name, shards in (("one.csv", 1), ("two.csv", 2)):
        key = f"batch/{NAME}/input/{name}"
        local_store.put_bytes(key, data)
        obj = parse_input_key(key)
        assert obj is not None
        run_input = RunInput(obj, "aiaas-local", local_store.head(key))
        if shards == 1:
            summary = run_object(local_store, models, run_input, run_settings(4))
        else:
            plan = plan_run(local_store, models, run_input, shards, run_settings(4))
            items = json.loads(local_store.get_bytes(plan["plan_key"]))
            assert data[items[1]["start"] :].startswith(b"r4,7\n")  # the refused rows alone
            for item in items:
                score_shard(local_store, models, item, run_settings())
            summary = merge_run(local_store, plan)
        assert (summary["status"], summary["scored_rows"]) == ("succeeded", 4)
        found.append((local_store.get_bytes(f"{OUT}/{name}"), errors(local_store, name)))
    assert found[1] == found[0] and [e["line"] for e in found[0][1]] == [6, 7, 8, 9]
