"""Batch scoring of each format on the local store: outputs, per-row errors, failed objects."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.batch_support import (
    LABELS,
    features_csv,
    published_store,
    read_csv,
    read_jsonl,
    reference_logits,
    run,
    softmax,
)

OUT = "batch/iris/output"


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return published_store(tmp_path)


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(25, 4))


# What a bad row with a missing value says to a model published without --allow-nonfinite.
MISSING = (
    "this model takes finite numbers only: "
    "fill it in, or publish a model whose graph takes them (`aiaas publish` reads an XGBoost "
    "or LightGBM export's trees and a SimpleImputer as taking them; `--allow-nonfinite` for "
    "another graph, but not skl2onnx's scikit-learn forests, which send every missing value "
    "one way)"
)


def test_csv_keeps_its_columns_and_gains_predictions(store, tmp_path, x):
    store.put_bytes("batch/iris/input/a.csv", features_csv(x).encode())
    summary = run(store, tmp_path, "batch/iris/input/a.csv", chunk_rows=7)
    assert summary["status"] == "succeeded"
    assert (summary["rows"], summary["scored_rows"], summary["failed_rows"]) == (25, 25, 0)
    assert (summary["model"], summary["version"], summary["format"]) == ("iris", "1", "csv")
    assert summary["output"] == f"{OUT}/a.csv"
    assert set(summary["timings"]) == {"read_s", "score_s", "write_s", "total_s"}
    rows = read_csv(store, f"{OUT}/a.csv")
    predictions = ["pred_logits_0", "pred_logits_1", "pred_logits_2", "pred_label", "pred_score"]
    assert list(rows[0]) == ["id", *[f"x_{i}" for i in range(4)], *predictions]
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(25)]
    assert [r["x_2"] for r in rows] == [repr(v) for v in x[:, 2].tolist()]  # input text untouched
    logits = np.array([[float(r[f"pred_logits_{i}"]) for i in range(3)] for r in rows])
    expected = reference_logits(tmp_path, x)
    np.testing.assert_array_equal(logits.astype(np.float32), expected)
    probs = softmax(expected)
    assert [r["pred_label"] for r in rows] == [LABELS[i] for i in probs.argmax(axis=1)]
    np.testing.assert_allclose([float(r["pred_score"]) for r in rows], probs.max(axis=1))
    assert store.get_bytes(f"{OUT}/a.csv.errors.jsonl") == b""


def test_csv_label_with_a_comma_is_quoted(store, tmp_path):
    row = np.array([[0.0, 5.0, 0.0, 0.0]])  # pick an input whose best class is "versi,color"
    for scale in np.linspace(-5, 5, 41):
        if softmax(reference_logits(tmp_path, row * scale)).argmax() == 1:
            row = row * scale
            break
    store.put_bytes("batch/iris/input/q.csv", features_csv(row).encode())
    run(store, tmp_path, "batch/iris/input/q.csv")
    text = store.get_bytes(f"{OUT}/q.csv").decode()
    assert ',"versi,color",' in text
    assert read_csv(store, f"{OUT}/q.csv")[0]["pred_label"] == "versi,color"


def test_csv_bad_rows_are_listed_with_line_numbers_and_the_rest_is_scored(store, tmp_path):
    lines = [
        "id,x_0,x_1,x_2,x_3",
        "ok1,1,2,3,4",
        "word,1,2,three,4",
        "",  # blank lines are skipped but counted
        "short,1,2",
        "nan,1,nan,3,4",  # the published manifest asks for finite inputs
        'quoted,"1.5",2,3,4',  # quotes take the careful parser, and are fine
        "empty,1,,3,4",
        "ok2,5,6,7,8",
    ]
    store.put_bytes("batch/iris/input/b.csv", ("\n".join(lines) + "\n").encode())
    summary = run(store, tmp_path, "batch/iris/input/b.csv")
    assert (summary["status"], summary["rows"], summary["scored_rows"]) == ("succeeded", 7, 3)
    errors = [
        json.loads(line) for line in store.get_bytes(f"{OUT}/b.csv.errors.jsonl").splitlines()
    ]
    assert errors == [
        {"line": 3, "error": "column 'x_2' is not a number: 'three'"},
        {"line": 5, "error": "has 3 fields; the header has 5"},
        {"line": 6, "error": f"input 'x' value 1 is a missing value (NaN); {MISSING}"},
        {"line": 8, "error": f"column 'x_1' is a missing value (an empty cell); {MISSING}"},
    ]
    assert [r["id"] for r in read_csv(store, f"{OUT}/b.csv")] == ["ok1", "quoted", "ok2"]


def test_csv_invalid_utf8_line_is_one_error(store, tmp_path):
    data = b"x_0,x_1,x_2,x_3\n1,2,3,4\n\xff\xfe,2,3,4\r\n5,6,7,8\r\n"
    store.put_bytes("batch/iris/input/u.csv", data)
    summary = run(store, tmp_path, "batch/iris/input/u.csv")
    assert summary["scored_rows"] == 2
    errors = store.get_bytes(f"{OUT}/u.csv.errors.jsonl").decode()
    assert json.loads(errors) == {"line": 3, "error": "not valid UTF-8 (byte 1)"}


def test_chunk_size_does_not_change_the_output(store, tmp_path, x):
    text = features_csv(x).replace("r3,", "r3,oops", 1)
    store.put_bytes("batch/iris/input/c.csv", text.encode())
    run(store, tmp_path, "batch/iris/input/c.csv", chunk_rows=1)
    small = store.get_bytes(f"{OUT}/c.csv"), store.get_bytes(f"{OUT}/c.csv.errors.jsonl")
    store.put_bytes("batch/iris/input/c.csv", text.encode() + b"")  # a new ETag: a new run
    store.delete(f"{OUT}/c.csv.summary.json")
    run(store, tmp_path, "batch/iris/input/c.csv", chunk_rows=4096)
    assert (store.get_bytes(f"{OUT}/c.csv"), store.get_bytes(f"{OUT}/c.csv.errors.jsonl")) == small


def test_jsonl_objects_gain_fields_and_bare_rows_are_wrapped(store, tmp_path, x):
    lines = [json.dumps({"id": i, "x": row}) for i, row in enumerate(x[:3].tolist())]
    lines += [json.dumps(x[3].tolist()), '{"x": [1, 2]}', "not json", '{"y": [1, 2, 3, 4]}']
    lines += ['{"x": [1, 2, 3, 4], "pred_label": "truth"}', '{"x": ["a", "b", "c", "d"]}']
    store.put_bytes("batch/iris/input/d.jsonl", ("\n".join(lines) + "\n").encode())
    summary = run(store, tmp_path, "batch/iris/input/d.jsonl")
    assert (summary["rows"], summary["scored_rows"], summary["failed_rows"]) == (9, 4, 5)
    rows = read_jsonl(store, f"{OUT}/d.jsonl")
    assert [r.get("id") for r in rows] == [0, 1, 2, None]
    assert rows[3]["x"] == x[3].tolist()
    expected = reference_logits(tmp_path, x[:4])
    np.testing.assert_array_equal(np.array([r["pred_logits"] for r in rows], np.float32), expected)
    assert [r["pred_label"] for r in rows] == [LABELS[i] for i in expected.argmax(axis=1)]
    errors = [
        json.loads(line) for line in store.get_bytes(f"{OUT}/d.jsonl.errors.jsonl").splitlines()
    ]
    assert errors == [
        {"line": 5, "error": "input 'x' must have shape [4] per row; got [2]"},
        {"line": 6, "error": "not valid JSON: Expecting value"},
        {"line": 7, "error": "missing input 'x'"},
        {
            "line": 8,
            "error": "field 'pred_label' starts with 'pred_', where predictions go; rename it",
        },
        {"line": 9, "error": "input 'x' must hold float32 numbers; got text"},
    ]


def test_jsonl_true_among_numbers_is_a_row_error_not_a_one(store, tmp_path):
    """numpy reads [1, true, 3, 4] as [1, 1, 3, 4]: the line was scored as if 1 had been sent."""
    lines = [
        '{"x": [1, true, 3, 4]}',
        '{"x": [1, 2, 3, false]}',
        '{"x": [1, 2, 3, 4], "checked": true}',  # a true beside the input is the caller's
        "[1, 2, 3, 4]",
    ]
    store.put_bytes("batch/iris/input/b.jsonl", ("\n".join(lines) + "\n").encode())
    assert run(store, tmp_path, "batch/iris/input/b.jsonl")["scored_rows"] == 2
    errors = [
        json.loads(line) for line in store.get_bytes(f"{OUT}/b.jsonl.errors.jsonl").splitlines()
    ]
    said = "input 'x' must hold float32 numbers; got true/false among them"
    assert errors == [{"line": 1, "error": said}, {"line": 2, "error": said}]


def test_jsonl_rows_numpy_cannot_stack_say_the_shape_wanted(store, tmp_path):
    """They said only "input 'x' is ragged", also for lists nested past numpy's 64 dimensions."""
    deep = "[" * 70 + "1" + "]" * 70
    lines = ['{"x": [[1, 2], [3]]}', f'{{"x": {deep}}}', "[1, 2, 3, 4]"]
    store.put_bytes("batch/iris/input/r.jsonl", ("\n".join(lines) + "\n").encode())
    assert run(store, tmp_path, "batch/iris/input/r.jsonl")["scored_rows"] == 1
    errors = [
        json.loads(line) for line in store.get_bytes(f"{OUT}/r.jsonl.errors.jsonl").splitlines()
    ]
    assert errors == [
        {"line": 1, "error": "input 'x' must have shape [4] per row; got lists of unequal lengths"},
        {
            "line": 2,
            "error": "input 'x' must have shape [4] per row; got lists nested over 64 deep",
        },
    ]


def test_npy_becomes_an_npz_with_one_row_per_input_row(store, tmp_path, x):
    data = x.astype(np.float32)
    data[4, 1] = np.inf  # not finite: filled, and listed as an error
    buffer = io.BytesIO()
    np.save(buffer, data)
    store.put_bytes("batch/iris/input/e.npy", buffer.getvalue())
    summary = run(store, tmp_path, "batch/iris/input/e.npy", chunk_rows=6)
    assert (summary["output"], summary["scored_rows"], summary["failed_rows"]) == (
        f"{OUT}/e.npz",
        24,
        1,
    )
    with np.load(io.BytesIO(store.get_bytes(f"{OUT}/e.npz"))) as arrays:
        assert sorted(arrays.files) == ["label", "logits", "score"]
        logits, labels, scores = arrays["logits"], arrays["label"], arrays["score"]
    assert logits.shape == (25, 3) and labels.shape == (25,) and scores.dtype == np.float64
    assert np.isnan(logits[4]).all() and labels[4] == "" and np.isnan(scores[4])
    good = np.delete(np.arange(25), 4)
    np.testing.assert_array_equal(logits[good], reference_logits(tmp_path, data[good]))
    assert json.loads(store.get_bytes(f"{OUT}/e.npy.errors.jsonl")) == {
        "row": 4, "error": "input 'x' value 1 is inf; this model needs finite numbers"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.csv", b"", "batch/iris/input/empty.csv is empty; nothing to score"),
        (
            "header.csv",
            b"id,x_0,x_1,feature3\n1,2,3,4\n",
            "batch/iris/input/header.csv: the header lacks column(s) x_2, x_3 (the header's other "
            "columns, which it does not read: id, feature3); model iris:1 reads x: x_0, x_1, x_2, x_3",
        ),
        (
            "noheader.csv",
            b"1,2,3,4\n",
            "batch/iris/input/noheader.csv: the header lacks column(s) x_0, x_1, x_2, x_3 (is the header line missing?); model iris:1 reads x: x_0, x_1, x_2, x_3",
        ),
        (
            "named.csv",
            b"sepal_length,sepal_width,petal_length,petal_width\n5,3,1,0\n",
            "batch/iris/input/named.csv: the header lacks column(s) x_0, x_1, x_2, x_3; model iris:1 reads x: x_0, x_1, x_2, x_3 (it was published without --features: rename the header's columns it reads so, in order, or publish a version with --features sepal_length,sepal_width,petal_length,petal_width)",
        ),
        (
            "taken.csv",
            b"x_0,x_1,x_2,x_3,pred_label\n",
            "batch/iris/input/taken.csv: columns starting with 'pred_' are where predictions go; rename pred_label",
        ),
        (
            "a.parquet",
            b"PAR1",
            "batch/iris/input/a.parquet: unsupported input format '.parquet'; batch reads .csv, .jsonl, .ndjson, .npy, .csv.gz, .jsonl.gz, .ndjson.gz, and renaming does not convert a Parquet file: write it as CSV and upload that (pandas: pd.read_parquet('a.parquet').to_csv('a.csv', index=False))",
        ),
        ("m.npy", b"not numpy", "batch/iris/input/m.npy: not an .npy file numpy can read"),
        (  # publish --data's labelled file, also given to compare: it said "name the file .npy"
            "held.npz",
            b"PK",
            "batch/iris/input/held.npz: unsupported input format '.npz'; batch reads .csv, .jsonl, .ndjson, .npy, .csv.gz, .jsonl.gz, .ndjson.gz, and an .npz holds several arrays (publish --data reads one so): for a model of one input save its array as .npy (numpy: np.save('held.npy', np.load('held.npz')['x'])); for one of several, or with labels, write the rows as JSONL, one object a row, a field an input",
        ),
    ],
)
def test_unreadable_objects_fail_with_a_summary_that_says_why(store, tmp_path, name, data, reason):
    store.put_bytes(f"batch/iris/input/{name}", data)
    summary = run(store, tmp_path, f"batch/iris/input/{name}")
    assert summary["status"] == "failed"
    assert summary["error"].startswith(reason)
    assert json.loads(store.get_bytes(f"{OUT}/{name}.summary.json")) == summary
    assert not store.exists(summary["output"])


def test_npy_of_the_wrong_shape_or_objects_fails(store, tmp_path):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((3, 5), np.float32))
    store.put_bytes("batch/iris/input/w.npy", buffer.getvalue())
    assert run(store, tmp_path, "batch/iris/input/w.npy")["error"] == (
        "batch/iris/input/w.npy: array shape [3, 5] does not fit input 'x' [-1, 4]; rows must have shape [4]"
    )
    buffer = io.BytesIO()
    np.save(buffer, np.array([[1, "a", None, 2]], dtype=object), allow_pickle=True)
    store.put_bytes("batch/iris/input/o.npy", buffer.getvalue())
    assert run(store, tmp_path, "batch/iris/input/o.npy")["error"] == (
        "batch/iris/input/o.npy: holds Python objects, which need pickle; save numbers"
    )


def test_npy_of_one_row_without_its_batch_axis_says_so(store, tmp_path):
    # np.save('row.npy', image) of one [3, 32, 32] image: "rows must have shape [3, 32, 32]"
    # was all it said, of an array of exactly that shape
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(4, np.float32))
    store.put_bytes("batch/iris/input/one.npy", buffer.getvalue())
    summary = run(store, tmp_path, "batch/iris/input/one.npy")
    assert summary["status"] == "failed"
    assert summary["error"] == (
        "batch/iris/input/one.npy: array shape [4] does not fit input 'x' [-1, 4]; rows must "
        "have shape [4]; this array is one row without its batch axis: save it as an array of "
        "rows, [1, 4] (numpy: np.save(path, row[None]))"
    )
    assert not store.exists(summary["output"])


def test_header_only_scores_nothing_and_all_bad_rows_fail(store, tmp_path):
    store.put_bytes("batch/iris/input/h.csv", b"x_0,x_1,x_2,x_3\n")
    summary = run(store, tmp_path, "batch/iris/input/h.csv")
    assert (summary["status"], summary["rows"]) == ("succeeded", 0)
    assert store.get_bytes(f"{OUT}/h.csv").startswith(b"x_0,x_1,x_2,x_3,pred_logits_0")
    store.put_bytes("batch/iris/input/bad.csv", b"x_0,x_1,x_2,x_3\na,b,c,d\n1\n")
    summary = run(store, tmp_path, "batch/iris/input/bad.csv")
    assert summary["status"] == "failed"
    assert summary["error"] == (
        f"none of the 2 rows could be scored; see {OUT}/bad.csv.errors.jsonl"
    )
    assert len(store.get_bytes(f"{OUT}/bad.csv.errors.jsonl").splitlines()) == 2


def test_unknown_model_fails_the_object(store, tmp_path):
    store.put_bytes("batch/nosuch/input/a.csv", b"x_0\n1\n")
    summary = run(store, tmp_path, "batch/nosuch/input/a.csv")
    assert (summary["status"], summary["error"]) == ("failed", "model 'nosuch' not found")


def test_integer_inputs_reject_fractions_and_out_of_range_values(tmp_path):
    store = LocalStore(tmp_path / "store")
    path = onnx_factory.identity(tmp_path / "ids.onnx", elem=TensorProto.INT8, shape=["N", 2])
    Registry(store).publish(onnx_factory.manifest_for(path, "ids", "1"), path)
    store.put_bytes("batch/ids/input/i.csv", b"x_0,x_1\n1,2\n1.5,2\n300,1\n-3,4\n")
    summary = run(store, tmp_path, "batch/ids/input/i.csv")
    assert summary["scored_rows"] == 2
    assert read_csv(store, "batch/ids/output/i.csv") == [
        {"x_0": "1", "x_1": "2", "pred_y_0": "1", "pred_y_1": "2"},
        {"x_0": "-3", "x_1": "4", "pred_y_0": "-3", "pred_y_1": "4"},
    ]
    errors = store.get_bytes("batch/ids/output/i.csv.errors.jsonl").decode().splitlines()
    assert [json.loads(e) for e in errors] == [
        {"line": 3, "error": "input 'x' value 0 is 1.5; expected an integer in [-128, 127]"},
        {"line": 4, "error": "input 'x' value 0 is 300.0; expected an integer in [-128, 127]"},
    ]
