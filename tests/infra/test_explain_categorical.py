"""A tabular model with string (categorical) columns, as a data scientist builds one: a pandas
DataFrame, a Pipeline(ColumnTransformer(OneHotEncoder on the strings, StandardScaler on the
numbers), LogisticRegression), exported by skl2onnx with its default options (`to_onnx(pipe,
frame[:1])`: one [N, 1] input a column, the strings' `tensor(string)`). `aiaas baseline` on the
training CSV stores a background of real categories; explanations over real HTTP (records, OIP
JSON and binary BYTES tensors), `aiaas explain --inputs` and `--file` mask the string columns
with those, add up, and equal the exact Shapley values and shap's KernelExplainer on the same
background. Drift still bins the numeric columns of such a model."""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import shap
import tritonclient.http as triton
from shap.utils._legacy import DenseData
from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline
from functions.runtime.explain.background import BACKGROUND_FILE, Background
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_explain_dataframe import _cli
from tests.infra.test_serve import start_serve

NUMBERS = ["age", "income", "visits"]
STRINGS = ["colour", "plan"]
COLUMNS = ["age", "colour", "income", "plan", "visits"]  # the frame's order: strings inside
OUTPUTS = ["0", "1", "2"]


@dataclass
class Shop:
    store: LocalStore
    base: str
    root: Path
    pipeline: Pipeline
    frame: pd.DataFrame


def _frame(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Numbers and two string columns that both move the class (colour most)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 12, rows).astype(np.float32),
            "colour": rng.choice(["red", "green", "blue"], rows, p=[0.5, 0.3, 0.2]),
            "income": rng.normal(50, 15, rows).astype(np.float32),
            "plan": rng.choice(["basic", "pro"], rows, p=[0.7, 0.3]),
            "visits": rng.poisson(4, rows).astype(np.float32),
        }
    )
    score = (
        (frame["age"] - 40) / 12
        + 2.5 * (frame["colour"] == "blue")
        - 2.0 * (frame["colour"] == "red")
        + 1.5 * (frame["plan"] == "pro")
        + rng.normal(0, 0.5, rows)
    )
    return frame, np.digitize(score, [-1.0, 0.8])


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    root = tmp_path_factory.mktemp("explain-categorical")
    store = LocalStore(root / "store")
    frame, target = _frame(600, seed=0)
    encode = ColumnTransformer(
        [("n", StandardScaler(), NUMBERS), ("c", OneHotEncoder(handle_unknown="ignore"), STRINGS)]
    )
    pipeline = make_pipeline(encode, LogisticRegression(max_iter=2000)).fit(frame, target)
    (root / "shop.onnx").write_bytes(to_onnx(pipeline, frame[:1]).SerializeToString())
    assert main(["--store", store.uri, "publish", str(root / "shop.onnx"), "--name", "shop"]) == 0
    frame.to_csv(root / "train.csv", index=False)
    # Every request flushes its drift counts, so the window holds them when monitor reads it.
    for server in start_serve(store.root, env={"AIAAS_DRIFT_FLUSH_SECONDS": "0.001"}):
        yield Shop(store, server.base, root, pipeline, frame)


@pytest.fixture(scope="module")
def baselined(shop: Shop) -> Background:
    """`aiaas baseline shop train.csv`, as a user runs it; the background it stored."""
    assert main(["--store", shop.store.uri, "baseline", "shop", str(shop.root / "train.csv")]) == 0
    raw = shop.store.get_bytes(f"{version_prefix('shop', '1')}/{BACKGROUND_FILE}")
    return Background.from_json(raw, len(COLUMNS), strings=(1, 3))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: v if isinstance(v, str) else float(v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def _explain(shop: Shop, body: dict[str, Any], v2: bool = False) -> Any:
    path = "/v2/models/shop/explain" if v2 else "/models/shop/explain"
    answer = httpx.post(shop.base + path, json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _table(background: Background) -> np.ndarray:
    """The background's rows with their real strings (an object array, the frame's columns)."""
    table = background.rows.astype(object)
    for column, values in background.categories.items():
        table[:, column] = [values[int(code)] for code in background.rows[:, column]]
    return table


def _probabilities(shop: Shop) -> Callable[[np.ndarray], np.ndarray]:
    def predict(rows: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(rows, columns=COLUMNS).astype({n: np.float32 for n in NUMBERS})
        return np.asarray(shop.pipeline.predict_proba(frame))

    return predict


def _exact_shapley(model: Callable[[np.ndarray], np.ndarray], x: np.ndarray, bg: Background):
    """The Shapley values of the masked-model game, all 2^5 coalitions by the formula: v(S) =
    sum_b w_b f(x on S, background row b elsewhere)."""
    table, m = _table(bg), len(x)
    value = {}
    for size in range(m + 1):
        for chosen in itertools.combinations(range(m), size):
            rows = table.copy()
            rows[:, list(chosen)] = x[list(chosen)]
            value[chosen] = bg.weights @ model(rows)
    phi = np.zeros((m, len(OUTPUTS)))
    for i in range(m):
        for chosen, v in value.items():
            if i in chosen:
                continue
            with_i = tuple(sorted((*chosen, i)))
            share = math.factorial(len(chosen)) * math.factorial(m - len(chosen) - 1)
            phi[i] += share / math.factorial(m) * (value[with_i] - v)
    return phi


def test_baseline_stores_real_categories(shop: Shop, baselined: Background) -> None:
    raw = json.loads(shop.store.get_bytes(f"{version_prefix('shop', '1')}/{BACKGROUND_FILE}"))
    assert raw["format"] == 2 and len(raw["rows"]) == 10
    # Real categories, every one, in about the data's shares (k-means over the numbers alone
    # gave every centre the commonest: all red, all basic).
    assert {row[1] for row in raw["rows"]} == {"red", "green", "blue"}
    assert {row[3] for row in raw["rows"]} == {"basic", "pro"}
    for column, value in ((1, "red"), (3, "pro")):
        share = sum(
            w for w, row in zip(raw["weights"], raw["rows"], strict=True) if row[column] == value
        )
        name = COLUMNS[column]
        assert abs(share - (shop.frame[name] == value).mean()) < 0.1, (value, share)
    assert all(isinstance(row[c], float) for row in raw["rows"] for c in (0, 2, 4))
    assert raw["source"].startswith("k-means (10 centres) of 600 rows, string columns by")
    np.testing.assert_allclose(baselined.weights.sum(), 1.0)
    # The numeric columns' weighted centres average to the data's mean, as k-means' do.
    mean = baselined.weights @ baselined.rows[:, [0, 2, 4]]
    np.testing.assert_allclose(mean, shop.frame[NUMBERS].mean().to_numpy(), rtol=1e-4)
    # The drift baseline bins the numeric columns (strings have no quantiles).
    drift = DriftBaseline.from_json(
        shop.store.get_bytes(f"{version_prefix('shop', '1')}/{BASELINE_FILE}")
    )
    assert drift.features == tuple(NUMBERS) and drift.rows == 600


def test_records_equal_exact_shapley_and_shap(shop: Shop, baselined: Background) -> None:
    rows = shop.frame.iloc[[0, 1, 2, 5]].copy()
    rows.iloc[3, 1] = "purple"  # a colour never seen: the encoder ignores it
    doc = _explain(shop, {"instances": _records(rows)})
    assert doc["features"] == COLUMNS and doc["outputs"] == OUTPUTS
    assert doc["parameters"]["exact"] is True and doc["parameters"]["samples"] == 30
    model = _probabilities(shop)
    table = rows.to_numpy(object)
    reference = shap.KernelExplainer(
        model, DenseData(_table(baselined), COLUMNS, None, baselined.weights)
    )
    want = np.asarray(reference.shap_values(table, nsamples=30, l1_reg=False, silent=True))
    for index, explained in enumerate(doc["explanations"]):
        values = np.asarray(explained["attributions"])
        gap = np.asarray(explained["prediction"]) - np.asarray(explained["base_value"])
        np.testing.assert_allclose(values.sum(axis=0), gap, atol=1e-5)  # additivity
        # float32 graph against float64 scikit-learn: equal to 1e-5.
        np.testing.assert_allclose(
            values, _exact_shapley(model, table[index], baselined), atol=1e-5
        )
        np.testing.assert_allclose(values, want[index], atol=1e-5)
    # Colour moves these rows most, as the model was made to.
    colour = np.abs([np.asarray(e["attributions"])[1] for e in doc["explanations"][:3]]).max()
    assert colour > 0.1


def test_oip_bytes_tensors_json_and_binary(shop: Shop, baselined: Background) -> None:
    rows = shop.frame.iloc[:3]
    as_json = [
        {
            "name": name,
            "shape": [3, 1],
            "datatype": "BYTES" if name in STRINGS else "FP32",
            "data": rows[name].tolist(),
        }
        for name in COLUMNS
    ]
    doc = _explain(shop, {"inputs": as_json}, v2=True)
    assert doc["parameters"]["features"] == COLUMNS
    out = {t["name"]: np.reshape(t["data"], t["shape"]) for t in doc["outputs"]}
    assert out["attributions"].shape == (3, len(COLUMNS), 3)
    np.testing.assert_allclose(
        out["attributions"].sum(axis=1), out["prediction"] - out["base_value"], atol=1e-5
    )
    tensors = []
    for name in COLUMNS:
        strings = name in STRINGS
        tensor = triton.InferInput(name, [3, 1], "BYTES" if strings else "FP32")
        values = rows[[name]].to_numpy(object if strings else np.float32)
        tensor.set_data_from_numpy(values)  # binary_data=True: tritonclient's default
        tensors.append(tensor)
    body, length = triton.InferenceServerClient.generate_request_body(tensors)
    answer = httpx.post(
        f"{shop.base}/v2/models/shop/explain",
        content=body,
        headers={"Inference-Header-Content-Length": str(length)},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    binary = {t["name"]: t["data"] for t in answer.json()["outputs"]}
    np.testing.assert_allclose(binary["attributions"], out["attributions"].ravel(), atol=1e-12)


def test_cli_explains_records(shop: Shop, baselined: Background, capsys: Any) -> None:
    record = json.dumps({"instances": _records(shop.frame.iloc[:1])})
    code, out = _cli(shop.store, capsys, "explain", "shop", "--inputs", record)
    assert code == 0, out
    assert out.startswith("shop:1 kernel_shap samples=30, exact=True, background_rows=10")
    assert "row 0: " in out and "  colour " in out and "  plan " in out
    # Bare records (a DataFrame's to_json(orient="records")), and the bar chart.
    records = shop.frame.iloc[:1].to_json(orient="records")
    png = shop.root / "why.png"
    code, out = _cli(shop.store, capsys, "explain", "shop", "--inputs", records, "--png", str(png))
    assert code == 0, out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "  colour " in out


def test_cli_explains_a_csv_with_a_bad_row(shop: Shop, baselined: Background, capsys: Any) -> None:
    rows = shop.frame.iloc[:70].copy().astype({"age": object})
    rows.iloc[3, 0] = "forty"  # not a number: that row's error, the others explained
    path = shop.root / "rows.csv"
    rows.to_csv(path, index=False)
    out_path = shop.root / "why.jsonl"
    code, out = _cli(
        shop.store, capsys, "explain", "shop", "--file", str(path), "--out", str(out_path)
    )
    assert code == 1
    assert f"explained 69 of 70 rows of {path} with shop:1 into {out_path}" in out
    lines = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert [line["row"] for line in lines] == list(range(70))
    assert [line["line"] for line in lines] == list(range(2, 72))  # the header is line 1
    assert "forty" in lines[3]["error"] and "line 5" in lines[3]["error"]
    first = _explain(shop, {"instances": _records(shop.frame.iloc[:1])})["explanations"][0]
    assert lines[0]["features"] == COLUMNS
    np.testing.assert_allclose(lines[0]["attributions"], first["attributions"], atol=1e-12)


def test_cli_explains_a_jsonl_of_records_with_string_columns(
    shop: Shop, baselined: Background, capsys: Any
) -> None:
    """A DataFrame's `to_json(orient="records", lines=True)`: one [N, 1] input a column, read as
    batch reads it; its strings masked as in a CSV's rows."""
    path = shop.root / "rows.jsonl"
    shop.frame.iloc[:2].to_json(path, orient="records", lines=True)
    code, out = _cli(shop.store, capsys, "explain", "shop", "--file", str(path))
    assert code == 0, out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [(line["row"], line["line"]) for line in lines] == [(0, 1), (1, 2)]
    first = _explain(shop, {"instances": _records(shop.frame.iloc[:1])})["explanations"][0]
    assert lines[0]["features"] == COLUMNS
    np.testing.assert_allclose(lines[0]["attributions"], first["attributions"], atol=1e-12)


def test_served_records_are_predicted_and_monitored(
    shop: Shop, baselined: Background, capsys: Any
) -> None:
    for start in (0, 25):
        body = {"instances": _records(shop.frame.iloc[start : start + 25])}
        answer = httpx.post(f"{shop.base}/models/shop/predict", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        time.sleep(0.01)
    # The server's timer writes the counts (every 1 ms here), after the answers: under CI's
    # load `monitor` ran before the write landed and found no rows (2026-12-07).
    deadline = time.monotonic() + 30
    while True:
        code, out = _cli(shop.store, capsys, "monitor", "shop", "--window", "10m", "--no-png")
        assert code == 0, out
        if "50 rows served" in out or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    # Numbers binned, strings by category; then each label's share, under "predicted label".
    table = out[out.index("feature") :].split("predicted label")[0].splitlines()[1:-1]
    names = sorted(line.split()[0] for line in table if line.split())
    assert names == sorted([*NUMBERS, *STRINGS, "(prediction)"]), out
