"""A scikit-learn pipeline that fills its own gaps (SimpleImputer, exported by skl2onnx as an
ai.onnx.ml Imputer replacing NaN) takes missing values once published, as its `predict` does.

Published without `--allow-nonfinite`, such a model was finite-only: `publish --data` on
held-out rows with gaps failed, `aiaas baseline` on its own training CSV failed, batch refused
every row with a gap and a `null` was a 422 (hunt_journey2 1). Publish now reads the Imputer
from the graph, as it reads a OneHotEncoder's missing category. A column the imputer does not
see (scaled only) stays finite-only. A regression user's DataFrame pipeline, exported with
skl2onnx's defaults, published, baselined, batch-scored and served over HTTP, each answer held
against scikit-learn's own predict.

Such an input takes what the Imputer replaces (NaN) and nothing else: +-infinity, and a finite
number that is infinity in float32 (1e39), go on through the Scaler to the estimator, and a
gradient-boosting pipeline answered them 200 with its largest-area leaf (review_rev8 1), batch
scored those rows and `publish --data` counted them in its metrics. The manifest keeps such an
input `finite` and marks it `gaps`: infinity is refused as before, and a function older than
the field ignores it and refuses a null (a 422), never serving infinity."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from functions.runtime.registry import Registry
from functions.runtime.rollout.same_inputs import difference
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_serve import ServeProcess, start_serve

NUMBERS = ["area", "rooms", "age"]


def _houses(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "sold_on": pd.date_range("2023-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "area": rng.uniform(30, 200, n).round(1),
            "rooms": rng.integers(1, 7, n).astype(float),
            "age": rng.uniform(0, 80, n).round(0),
            "city": rng.choice(["paris", "lyon", "nice"], n),
        }
    )
    data["price"] = 3000 * data.area + 10000 * data.rooms - 500 * data.age
    data.loc[::7, "area"] = np.nan
    data.loc[3::9, "age"] = np.nan
    return data


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """houses:1 imputes area, rooms and age; houses-scaled:1 scales `rooms` without imputing
    it; houses-gb:1 is houses' columns before gradient boosting. All published without
    --allow-nonfinite; train.csv and holdout.csv beside the store."""
    work = tmp_path_factory.mktemp("imputed")
    train, holdout = _houses(300, 0), _houses(80, 1)
    train.to_csv(work / "train.csv", index=False)
    holdout.to_csv(work / "holdout.csv", index=False)
    frame = train[[*NUMBERS, "city"]].astype({c: "float32" for c in NUMBERS})
    city = OneHotEncoder(handle_unknown="ignore")
    imputing = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), NUMBERS),
            ("cat", city, ["city"]),
        ]
    )
    scaled = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["area", "age"]),
            ("rooms", StandardScaler(), ["rooms"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )
    store = work / "store"
    boosted = GradientBoostingRegressor(n_estimators=20, random_state=0)
    holdout_frame = holdout[[*NUMBERS, "city"]].astype({c: "float32" for c in NUMBERS})
    for name, columns, model in (
        ("houses", imputing, Ridge()),
        ("houses-scaled", scaled, Ridge()),
        ("houses-gb", imputing, boosted),
    ):
        pipe = Pipeline([("ct", columns), ("model", model)]).fit(frame, train.price)
        if name != "houses-scaled":
            np.save(work / f"{name}.npy", pipe.predict(holdout_frame))
        (work / f"{name}.onnx").write_bytes(to_onnx(pipe, frame[:1]).SerializeToString())
        assert (
            main(["--store", str(store), "publish", str(work / f"{name}.onnx"), "--name", name])
            == 0
        )
    # houses-anf:1 takes NaN and infinity (--allow-nonfinite), as before publish read Imputers.
    anf = ["--store", str(store), "publish", str(work / "houses.onnx"), "--allow-nonfinite"]
    assert main([*anf, "--name", "houses-anf"]) == 0
    return work


def test_publish_reads_the_imputer_and_says_so(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Registry(LocalStore(published / "store"))
    # finite stays on (infinity refused); gaps: a missing value is the graph's to fill.
    houses = registry.manifest("houses", "1")
    read = {s.name: (s.finite, s.gaps) for s in houses.inputs}
    imputed = (True, True)
    assert read == {"area": imputed, "rooms": imputed, "age": imputed, "city": (False, False)}
    scaled = {s.name: (s.finite, s.gaps) for s in registry.manifest("houses-scaled", "1").inputs}
    assert scaled == {
        "area": imputed,
        "rooms": (True, False),
        "age": imputed,
        "city": (False, False),
    }
    # No schema version 2: a reader older than `gaps` ignores it and takes the input as finite
    # only, refusing a null (the old 422) and infinity; it never serves either.
    stored = json.loads((published / "store/models/houses/versions/1/manifest.json").read_text())
    assert stored["schema_version"] == 1 and "requires" not in stored, stored
    assert stored["inputs"][0] == {**stored["inputs"][0], "finite": True, "gaps": True}
    code = main(
        ["--store", str(published / "store"), "publish", str(published / "houses.onnx"),
         "--name", "houses", "--data", str(published / "holdout.csv"), "--target", "price"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    said = "inputs 'area', 'rooms', 'age' take missing values (null, an empty CSV cell): the graph"
    assert said in out and "on 80 rows of holdout.csv" in out, out
    metrics = registry.manifest("houses", "2").metrics["held_out"]
    truth = pd.read_csv(published / "holdout.csv").price.to_numpy()
    mae = np.abs(np.load(published / "houses.npy") - truth).mean()
    assert metrics["mae"] == pytest.approx(mae, rel=1e-4), metrics


def test_baseline_and_batch_take_the_gaps_the_graph_imputes(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = ["--store", str(published / "store")]
    assert main([*cli, "baseline", "houses:1", str(published / "train.csv")]) == 0
    assert main([*cli, "batch", "houses", str(published / "holdout.csv")]) == 0
    assert "scored 80 of 80 rows" in capsys.readouterr().out
    scored = pd.read_csv(published / "store/batch/houses/output/holdout.csv")
    np.testing.assert_allclose(scored.pred_variable, np.load(published / "houses.npy"), rtol=1e-5)
    # `rooms` of the other model is scaled, never imputed: an empty cell is still refused.
    assert main([*cli, "baseline", "houses-scaled", str(published / "train.csv")]) == 0
    gap = {"area": [50.0, 60.0], "rooms": [None, 2.0], "age": [3.0, None], "city": ["nice"] * 2}
    pd.DataFrame(gap).to_csv(published / "gap.csv", index=False)
    assert main([*cli, "batch", "houses-scaled", str(published / "gap.csv")]) == 0
    errors = (published / "store/batch/houses-scaled/output/gap.csv.errors.jsonl").read_text()
    assert "column 'rooms' is a missing value" in errors and len(errors.splitlines()) == 1, errors


@pytest.fixture(scope="module")  # one server for the tests that only predict
def server(published: Path) -> Iterator[ServeProcess]:
    yield from start_serve(published / "store")


@pytest.mark.parametrize("model", ["houses", "houses-gb"])
def test_a_null_is_answered_as_predict_answers_it(
    published: Path, server: ServeProcess, model: str
) -> None:
    holdout = pd.read_csv(published / "holdout.csv")
    rows = holdout[[*NUMBERS, "city"]].head(8)
    records = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()} for _, row in rows.iterrows()
    ]
    assert any(None in r.values() for r in records)
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/models/{model}/versions/1/predict",
        data=json.dumps({"instances": records}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        values = np.array(json.loads(answer.read())["outputs"]["variable"]).ravel()
    np.testing.assert_allclose(values, np.load(published / f"{model}.npy")[:8], rtol=1e-5)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_a_number_float32_cannot_hold_is_the_callers_gap_not_the_models_failure(
    server: ServeProcess,
) -> None:
    """Where the model takes infinity (--allow-nonfinite), 1e39 in simple JSON is float32's
    infinity, answered as the OIP binary inf is (a 422: a row the model cannot score), not a
    500 saying the model failed, as the value was looked at as sent, a finite float64."""
    url = f"http://127.0.0.1:{server.port}/models/houses-anf/versions/1/predict"
    record = {"area": 1e39, "rooms": 3.0, "age": 20.0, "city": "lyon"}
    status, doc = _post(url, json.dumps({"instances": [record]}).encode(), JSON_HEADERS)
    assert status == 422, doc
    assert "answered NaN or infinity for 1 of 1 rows" in str(doc["error"]), doc


@pytest.mark.parametrize("model", ["houses", "houses-gb"])
def test_infinity_is_still_refused_where_a_gap_is_taken(
    published: Path, server: ServeProcess, model: str
) -> None:
    """1e39 (float32's infinity) in JSON and an OIP binary inf are 422s naming the input, as a
    finite-only input's are: the Imputer does not replace them. Before, the boosted pipeline
    answered both 200 (its largest-area leaf) and Ridge's 1e39 was a 500 blaming the model."""
    url = f"http://127.0.0.1:{server.port}"
    record = {"area": 80.0, "rooms": 3.0, "age": None, "city": "lyon"}
    row = pd.DataFrame([record]).astype({c: "float32" for c in NUMBERS})
    for big in (1e39, -1e39):
        status, doc = _post(
            f"{url}/models/{model}/versions/1/predict",
            json.dumps({"instances": [{**record, "area": big}]}).encode(),
            JSON_HEADERS,
        )
        assert status == 422, doc
        assert "input 'area'" in str(doc["error"]) and "out of float32's range" in str(
            doc["error"]
        ), doc
    for value, said in ((np.inf, "found infinity"), (-np.inf, "found -infinity")):
        status, doc = _post(
            f"{url}/v2/models/{model}/versions/1/infer", *_binary_request(row, area=value)
        )
        assert status == 422, doc
        assert "input 'area' must be finite; " + said in str(doc["error"]), doc


JSON_HEADERS = {"content-type": "application/json"}


def _binary_request(row: pd.DataFrame, area: float) -> tuple[bytes, dict[str, str]]:
    """An OIP request with binary FP32 tensors (tritonclient's `binary_data=True` layout): the
    JSON header, then each tensor's raw little-endian bytes in order."""
    tensors, chunks = [], []
    for name in [*NUMBERS, "city"]:
        if name == "city":
            text = str(row[name].iloc[0]).encode()
            raw = len(text).to_bytes(4, "little") + text
            tensors.append({"name": name, "shape": [1, 1], "datatype": "BYTES"})
        else:
            value = np.float32(area if name == "area" else row[name].iloc[0])
            raw = np.array([[value]], dtype="<f4").tobytes()
            tensors.append({"name": name, "shape": [1, 1], "datatype": "FP32"})
        tensors[-1]["parameters"] = {"binary_data_size": len(raw)}
        chunks.append(raw)
    header = json.dumps({"inputs": tensors}).encode()
    headers = {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(header)),
    }
    return header + b"".join(chunks), headers


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_batch_and_publish_data_refuse_infinite_cells(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """inf, -inf, Infinity and 1e39 cells of an imputed column are bad rows, each naming its
    column; the gaps and the other rows are scored as scikit-learn predicts them. Before, the
    boosted pipeline scored every one ("0 failed") and publish --data counted them."""
    cli = ["--store", str(published / "store")]
    holdout = pd.read_csv(published / "holdout.csv")
    sklearn = np.load(published / "houses-gb.npy")
    lines = (published / "holdout.csv").read_text().splitlines()
    bad = {2: "inf", 5: "-inf", 9: "Infinity", 12: "1e39"}  # holdout rows, 0-based
    header = lines[0].split(",")
    column = header.index("area")
    for row, cell in bad.items():
        cells = lines[row + 1].split(",")
        cells[column] = cell
        lines[row + 1] = ",".join(cells)
    (published / "infrows.csv").write_text("\n".join(lines) + "\n")
    assert main([*cli, "batch", "houses-gb", str(published / "infrows.csv")]) == 0
    out = capsys.readouterr().out
    assert f"scored {len(holdout) - len(bad)} of {len(holdout)} rows" in out, out
    output = published / "store/batch/houses-gb/output/infrows.csv"
    errors = [json.loads(e) for e in Path(f"{output}.errors.jsonl").read_text().splitlines()]
    assert len(errors) == len(bad), errors
    for error in errors:
        assert "'area'" in error["error"] and "answered" not in error["error"], error
    assert any("out of float32's range" in e["error"] for e in errors), errors
    kept = np.setdiff1d(np.arange(len(holdout)), list(bad))
    scored = pd.read_csv(output)
    np.testing.assert_allclose(scored.pred_variable, sklearn[kept], rtol=1e-5)
    # publish --data: an infinite row is refused, saying which; not scored into the metrics.
    code = main(
        [*cli, "publish", str(published / "houses-gb.onnx"), "--name", "houses-gb",
         "--data", str(published / "infrows.csv"), "--target", "price"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and "input 'area' must be finite; found infinity at index [2, 0]" in err, err
    assert Registry(LocalStore(published / "store")).versions("houses-gb") == ["1"]


def test_versions_before_and_after_gaps_compare_and_roll_out(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """houses-old:1 is houses as published before publish read the Imputer (finite, no gaps);
    houses-old:2 the same file published now. Compare scores one file with both (the rows with
    a gap, which 1 refuses, left out and said so) where it refused both orders as "reading
    different inputs"; a rollout from 1 to 2 passes, and back says what 1 refuses."""
    store = published / "store"
    registry = Registry(LocalStore(store))
    new = registry.manifest("houses", "1")
    inputs = tuple(replace(s, gaps=False) for s in new.inputs)
    old = replace(new, name="houses-old", inputs=inputs, files=())
    registry.publish(old, published / "houses.onnx")
    cli = ["--store", str(store)]
    assert main([*cli, "publish", str(published / "houses.onnx"), "--name", "houses-old"]) == 0
    holdout = pd.read_csv(published / "holdout.csv")
    gappy = int(holdout[NUMBERS].isna().any(axis=1).sum())
    assert 0 < gappy < len(holdout)
    capsys.readouterr()
    for a, b in (("1", "2"), ("2", "1")):
        args = [*cli, "compare", "houses-old", a, b, "--data", str(published / "holdout.csv")]
        assert main([*args, "--json"]) == 0, capsys.readouterr().err
        report = json.loads(capsys.readouterr().out)
        assert report["rows"]["compared"] == len(holdout) - gappy, report
        assert report["rows"]["failed"] == gappy, report
    v1, v2 = registry.manifest("houses-old", "1"), registry.manifest("houses-old", "2")
    assert difference(v1, v2) is None
    assert difference(v2, v1) == (
        "its input 'area' refuses missing values (null, NaN), which the baseline takes"
    )
