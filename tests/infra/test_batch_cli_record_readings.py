"""`aiaas batch` reads one record as the predict API does, and says what is wrong with a file.

- A model with feature names, given a record holding both its `x_*` values and every feature:
  CSV scored the `x_*` columns, JSONL and the predict API the features: one record, two
  answers, no warning. All three now read the features (and `x_*` when not every feature is
  there).
- An int64 input's integer past int64's range, written as digits in JSONL
  (9223372036854775808), was said to be "read as a float" with the advice to send it as
  written digits, which it was.
- A number or true/false among a string input's texts in a JSONL row (["c", 1.0]) was scored
  as the text "1.0" or "True"; it is now the row's error, as the predict route refuses it.
- A JSONL file of pretty-printed records (`jq .`, `json.dump(record, indent=2)`) got a vague
  JSON error for each of its lines; it now fails once, saying how to write a record a line.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.functions.test_predict_events import body_of, http_event

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
OWN = [7.0, 7.0, 7.0, 7.0]  # the input's x_* values
NAMED = [5.1, 3.5, 1.4, 0.2]  # the features' values


@pytest.fixture
def named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[LocalStore, Path]:
    """A linear model (logits of 3 classes from x [N, 4]) published with feature names."""
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    model = onnx_factory.linear_classifier(tmp_path / "lin.onnx")
    store = LocalStore(tmp_path / "store")
    publish = ["publish", str(model), "--name", "irisf", "--features", ",".join(FEATURES)]
    assert main(["--store", store.uri, *publish]) == 0
    return store, model


def _logits(model: Path, row: list[float]) -> list[float]:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (out,) = session.run(["logits"], {"x": np.array([row], dtype=np.float32)})
    return [float(v) for v in out[0]]


def _batch(store: LocalStore, path: Path) -> int:
    return main(["--store", store.uri, "batch", "irisf", str(path), "--no-progress"])


def _predicted(store: LocalStore, tmp_path: Path, record: dict[str, Any]) -> list[float]:
    """The predict API's logits for `record`, sent as an instance (what JSONL lines are)."""
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "irisf"}, pool)
    body = json.dumps({"instances": [record]})
    response = service.handle(http_event("POST", "/models/irisf/predict", body))
    assert response["statusCode"] == 200, response["body"]
    return [float(v) for v in body_of(response)["outputs"]["logits"][0]]


@pytest.mark.parametrize(
    ("features", "reads"),
    [
        (FEATURES, NAMED),  # both complete: the features, as predict reads the record
        (FEATURES[:2], OWN),  # x_* complete, some features beside them: x_*
    ],
    ids=["every-feature", "some-features"],
)
def test_csv_jsonl_and_predict_score_a_record_of_x_and_features_alike(
    named: tuple[LocalStore, Path],
    tmp_path: Path,
    features: tuple[str, ...],
    reads: list[float],
) -> None:
    store, model = named
    record: dict[str, Any] = {"id": "r0", "x": OWN, **dict(zip(features, NAMED, strict=False))}
    header = ["id", "x_0", "x_1", "x_2", "x_3", *features]
    cells = ["r0", *OWN, *NAMED[: len(features)]]
    (tmp_path / "rows.csv").write_text(",".join(header) + "\n" + ",".join(map(str, cells)) + "\n")
    (tmp_path / "rows.jsonl").write_text(json.dumps(record) + "\n")
    assert _batch(store, tmp_path / "rows.csv") == 0
    assert _batch(store, tmp_path / "rows.jsonl") == 0

    text = store.get_bytes("batch/irisf/output/rows.csv").decode()
    (row,) = csv.DictReader(io.StringIO(text))
    by_csv = [float(row[f"pred_logits_{i}"]) for i in range(3)]
    (line,) = store.get_bytes("batch/irisf/output/rows.jsonl").decode().splitlines()
    by_jsonl = json.loads(line)["pred_logits"]
    by_predict = _predicted(store, tmp_path, record)

    expected = _logits(model, reads)
    assert expected != _logits(model, OWN if reads is NAMED else NAMED)  # the test tells them apart
    for got in (by_csv, by_jsonl, by_predict):
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert row["x_0"] == "7.0"  # the columns not read are passed through as they were


def test_an_int64_written_as_digits_past_its_range_is_said_to_be_out_of_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    model = onnx_factory.identity(tmp_path / "ids.onnx", TensorProto.INT64, ["N", 2])
    store = LocalStore(tmp_path / "store")
    assert main(["--store", store.uri, "publish", str(model), "--name", "ids"]) == 0
    lines = [
        "[9223372036854775808, 1]",  # int64's max + 1: float64(2**63) passed the range test
        "[-9223372036854775809, 1]",  # past 64 bits: orjson reads it as a float
        "[18446744073709551616, 1]",
        "[100000000000000000000000, 1]",  # read as 1e+23
        '{"x": [18446744073709551616, 1], "note": NaN}',  # json's exact int (orjson refuses NaN)
        "[9223372036854775807, -9223372036854775808]",  # the extremes: scored exactly
    ]
    (tmp_path / "ids.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["--store", store.uri, "batch", "ids", str(tmp_path / "ids.jsonl")]) == 0
    report = store.get_bytes("batch/ids/output/ids.jsonl.errors.jsonl").decode().splitlines()
    errors = {doc["line"]: doc["error"] for doc in map(json.loads, report)}
    bounds = "expected an integer in [-9223372036854775808, 9223372036854775807]"
    assert errors == {
        1: f"input 'x' value 0 is 9223372036854775808; {bounds}",
        2: f"input 'x' value 0 is -9223372036854775809; {bounds}",
        3: f"input 'x' value 0 is 18446744073709551616; {bounds}",
        4: f"input 'x' value 0 is 100000000000000000000000; {bounds}",
        5: f"input 'x' value 0 is 18446744073709551616; {bounds}",
    }
    (scored,) = store.get_bytes("batch/ids/output/ids.jsonl").decode().splitlines()
    assert json.loads(scored)["pred_y"] == [2**63 - 1, -(2**63)]


def test_a_number_or_true_among_a_rows_texts_is_its_error_not_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """numpy made ["c", 1.0] the texts "c", "1.0" and true "True": scored as those categories,
    where a value alone (1.0) was refused, and the predict route now refuses it too."""
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    model = onnx_factory.identity(tmp_path / "texts.onnx", TensorProto.STRING, ["N", 2])
    store = LocalStore(tmp_path / "store")
    assert main(["--store", store.uri, "publish", str(model), "--name", "texts"]) == 0
    lines = ['["a", "1.0"]', '["c", 1.0]', '{"x": ["d", true]}', '["e", ["f"]]']
    (tmp_path / "texts.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["--store", store.uri, "batch", "texts", str(tmp_path / "texts.jsonl")]) == 0
    report = store.get_bytes("batch/texts/output/texts.jsonl.errors.jsonl").decode().splitlines()
    errors = {doc["line"]: doc["error"] for doc in map(json.loads, report)}
    among = (
        "input 'x' must hold strings; got a number or true/false among its texts: send each "
        "value as a JSON string"
    )
    assert errors[2] == errors[3] == among
    assert 4 in errors  # a list among the texts: refused as before, by its shape
    (scored,) = store.get_bytes("batch/texts/output/texts.jsonl").decode().splitlines()
    assert json.loads(scored)["pred_y"] == ["a", "1.0"]  # a text that reads as a number stays one


@pytest.mark.parametrize("name", ["pretty.jsonl", "pretty.jsonl.gz"])
def test_a_jsonl_of_pretty_printed_records_fails_once_saying_how_to_write_a_record_a_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
) -> None:
    import gzip

    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    model = onnx_factory.identity(tmp_path / "ident.onnx")
    store = LocalStore(tmp_path / "store")
    assert main(["--store", store.uri, "publish", str(model), "--name", "ident"]) == 0
    text = "".join(json.dumps({"x": [i, 2, 3]}, indent=2) + "\n" for i in range(3))  # jq .
    data = text.encode()
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    capsys.readouterr()
    assert main(["--store", store.uri, "batch", "ident", str(tmp_path / name)]) == 1
    said = (
        "records span several lines (pretty-printed JSON: the first line is '{' alone), not "
        "JSON Lines (one record a line); write a record a line: jq -c . rows.json > rows.jsonl"
    )
    assert said in capsys.readouterr().err
    summary = json.loads(store.get_bytes(f"batch/ident/output/{name}.summary.json"))
    assert summary["status"] == "failed"
    assert said in summary["error"]
    assert not store.exists(f"batch/ident/output/{name}.errors.jsonl")  # not a bad row a line
