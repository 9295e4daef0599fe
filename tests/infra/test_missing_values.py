"""Acceptance: missing values reach a model that handles them, whichever way a caller sends them.

A scikit-learn RandomForest trained on wine with a tenth of its values missing (scikit-learn's
trees take NaN by default), exported by skl2onnx with its default options and published with
the real `aiaas publish --allow-nonfinite`, answers for rows with gaps what onnxruntime answers
for the same file given NaN: `null` in simple JSON (rows, records, columns) and OIP JSON over
real HTTP (`aiaas serve`), NaN in tritonclient's binary tensors, empty cells in batch CSV and
`null` in JSONL. (Not what scikit-learn answers: skl2onnx 1.20 exports every tree node with
`missing_value_tracks_true = 0`, so NaN always takes the "greater" branch, where scikit-learn
learned a side per node; docs/batch.md says so.) The
same file published without the flag answers a 422 that says the value is missing and how to
publish a model that takes missing values, and batch lists those rows as bad.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton
from skl2onnx import to_onnx
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_serve import start_serve

FEATURES = [f"f{i}" for i in range(13)]
MISSING = (
    "is a missing value ({}); this model takes finite numbers only: "
    "fill it in, or publish a model whose graph takes them (`aiaas publish` reads an XGBoost "
    "or LightGBM export's trees and a SimpleImputer as taking them; `--allow-nonfinite` for "
    "another graph, but not skl2onnx's scikit-learn forests, which send every missing value "
    "one way)"
)


@dataclass
class Forest:
    store: LocalStore
    x: np.ndarray  # float32 rows with NaN gaps, every row has at least one
    expected: np.ndarray  # onnxruntime's probabilities for `x`, from the published file


@pytest.fixture(scope="module")
def forest(tmp_path_factory: pytest.TempPathFactory) -> Forest:
    root = tmp_path_factory.mktemp("missing-values")
    x, y = load_wine(return_X_y=True)
    x = x.astype(np.float32)
    rng = np.random.default_rng(0)
    x[rng.random(x.shape) < 0.1] = np.nan
    x[np.arange(len(x)), rng.integers(0, 13, len(x))] = np.nan  # a gap in every row
    estimator = RandomForestClassifier(n_estimators=30, random_state=0).fit(x, y)
    path = root / "forest.onnx"
    path.write_bytes(to_onnx(estimator, x[:1]).SerializeToString())  # default options: ZipMap
    store = LocalStore(root / "store")
    names = ",".join(FEATURES)
    for name, flags in (("forest", ["--allow-nonfinite"]), ("strict", [])):
        args = ["--store", store.uri, "publish", str(path), "--name", name, "--features", names]
        assert main([*args, *flags]) == 0
    rows = x[:40]
    expected = answer(path, rows)
    # NaN reaches the model as NaN, not as some number: 0 in its place answers otherwise.
    assert np.abs(expected - answer(path, np.nan_to_num(rows))).max() > 0.1
    return Forest(store, rows, expected)


def answer(path: Path, x: np.ndarray) -> np.ndarray:
    """The file's class probabilities, straight from onnxruntime (ZipMap: one dict a row)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    maps = session.run(["output_probability"], {"X": x})[0]
    return np.array([[row[c] for c in range(3)] for row in maps])


@pytest.fixture(scope="module")
def base_url(forest: Forest) -> Iterator[str]:
    for server in start_serve(forest.store.root):
        yield server.base


def nulls(x: np.ndarray) -> list[list[float | None]]:
    """The rows as JavaScript's JSON.stringify or pandas' to_json write them: NaN is null."""
    return [[None if np.isnan(v) else v for v in row] for row in x.tolist()]


def probabilities(answer: httpx.Response) -> np.ndarray:
    assert answer.status_code == 200, answer.text
    return np.asarray(answer.json()["outputs"]["output_probability"])


def test_null_in_simple_json_is_a_missing_value(forest: Forest, base_url: str) -> None:
    expected = forest.expected
    rows = nulls(forest.x)
    records = [dict(zip(FEATURES, row, strict=True)) for row in rows]
    columns = {name: [row[i] for row in rows] for i, name in enumerate(FEATURES)}
    for body in (
        {"inputs": rows},
        {"instances": rows},
        {"instances": records},
        {"inputs": columns},
    ):
        answer = httpx.post(f"{base_url}/models/forest/predict", json=body, timeout=30)
        np.testing.assert_allclose(probabilities(answer), expected, rtol=1e-5, atol=1e-6)


def test_null_in_oip_json_and_nan_in_tritonclients_binary(forest: Forest, base_url: str) -> None:
    x = forest.x
    expected = forest.expected
    doc = {"inputs": [{"name": "X", "shape": list(x.shape), "datatype": "FP32", "data": nulls(x)}]}
    answer = httpx.post(f"{base_url}/v2/models/forest/infer", json=doc, timeout=30)
    assert answer.status_code == 200, answer.text
    got = {item["name"]: item["data"] for item in answer.json()["outputs"]}
    np.testing.assert_allclose(np.reshape(got["output_probability"], (len(x), 3)), expected, 1e-5)
    client = triton.InferenceServerClient(base_url.removeprefix("http://"), network_timeout=30)
    try:
        tensor = triton.InferInput("X", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=True)
        result = client.infer("forest", [tensor])
    finally:
        client.close()
    np.testing.assert_allclose(result.as_numpy("output_probability"), expected, 1e-5, 1e-6)


def test_a_model_without_the_flag_says_the_value_is_missing(forest: Forest, base_url: str) -> None:
    rows = nulls(forest.x[:1])
    where = rows[0].index(None)
    cases = [
        ("/models/strict/predict", {"inputs": rows}, f"input 'X' at index [0, {where}]", "null"),
        (
            "/models/strict/predict",
            {"instances": [dict(zip(FEATURES, rows[0], strict=True))]},
            f"instances[0].f{where}",
            "null",
        ),
        (
            "/v2/models/strict/infer",
            {"inputs": [{"name": "X", "shape": [1, 13], "datatype": "FP32", "data": rows}]},
            f"input 'X' at index [0, {where}]",
            "null or NaN",
        ),
    ]
    for path, body, named, sent in cases:
        answer = httpx.post(f"{base_url}{path}", json=body, timeout=30)
        assert (answer.status_code, answer.json()) == (
            422,
            {"error": f"{named} {MISSING.format(sent)}"},
        )


def test_overflow_is_out_of_float32s_range_not_non_finite(base_url: str) -> None:
    row: list[float] = [1.0] * 13
    row[4] = 1e39
    answer = httpx.post(f"{base_url}/models/strict/predict", json={"inputs": [row]}, timeout=30)
    assert (answer.status_code, answer.json()) == (
        422,
        {"error": "input 'X' has 1e+39 at index [0, 4], out of float32's range (±3.4e+38)"},
    )


def batch(forest: Forest, model: str, name: str, text: str, tmp_path: Path) -> tuple[str, str]:
    """(output, errors) of `aiaas batch MODEL FILE` on `text`."""
    data = tmp_path / name
    data.write_text(text)
    assert main(["--store", forest.store.uri, "batch", model, str(data)]) == 0
    prefix = f"batch/{model}/output/{name}"
    output = forest.store.get_bytes(prefix).decode()
    return output, forest.store.get_bytes(f"{prefix}.errors.jsonl").decode()


def csv_text(x: np.ndarray) -> str:
    """As pandas' DataFrame.to_csv writes it: NaN is an empty cell."""
    lines = ["id," + ",".join(FEATURES)]
    for i, row in enumerate(nulls(x)):
        lines.append(",".join([f"r{i}", *("" if v is None else repr(v) for v in row)]))
    return "\n".join(lines) + "\n"


def jsonl_text(x: np.ndarray) -> str:
    """Records as pandas' to_json(orient="records", lines=True) writes them: NaN is null."""
    rows = nulls(x)
    return "".join(
        json.dumps({"id": i, **dict(zip(FEATURES, r, strict=True))}) + "\n"
        for i, r in enumerate(rows)
    )


def test_batch_empty_cells_and_nulls(
    forest: Forest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    x = forest.x
    whole = np.nan_to_num(x[:1], nan=1.0)  # a row without gaps
    for name, write in (("gaps.csv", csv_text), ("gaps.jsonl", jsonl_text)):
        header = int(name.endswith(".csv"))  # lines count from 1, a CSV header included
        output, errors = batch(forest, "forest", name, write(x), tmp_path)
        assert errors == ""
        if header:
            scored = list(csv.DictReader(io.StringIO(output)))
            got = [[float(r[f"pred_output_probability_{c}"]) for c in range(3)] for r in scored]
        else:
            got = [json.loads(line)["pred_output_probability"] for line in output.splitlines()]
        np.testing.assert_allclose(got, forest.expected, rtol=1e-5, atol=1e-6)

        # Without the flag every row with a gap is a bad row that says why; a whole row scores.
        output, errors = batch(forest, "strict", name, write(np.vstack([x, whole])), tmp_path)
        refused = [json.loads(line) for line in errors.splitlines()]
        assert [e["line"] for e in refused] == list(range(1 + header, len(x) + 1 + header))
        assert len(output.splitlines()) == 1 + header
        first = nulls(x[:1])[0].index(None)
        named, sent = (
            (f"column 'f{first}'", "an empty cell") if header else (f"feature 'f{first}'", "null")
        )
        assert refused[0]["error"] == f"{named} {MISSING.format(sent)}"
