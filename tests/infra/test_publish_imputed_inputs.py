"""A scikit-learn pipeline that fills its own gaps (SimpleImputer, exported by skl2onnx as an
ai.onnx.ml Imputer replacing NaN) takes missing values once published, as its `predict` does.

Published without `--allow-nonfinite`, such a model was finite-only: `publish --data` on
held-out rows with gaps failed, `aiaas baseline` on its own training CSV failed, batch refused
every row with a gap and a `null` was a 422 (hunt_journey2 1). Publish now reads the Imputer
from the graph, as it reads a OneHotEncoder's missing category. A column the imputer does not
see (scaled only) stays finite-only. A regression user's DataFrame pipeline, exported with
skl2onnx's defaults, published, baselined, batch-scored and served over HTTP, each answer held
against scikit-learn's own predict."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from functions.runtime.registry import Registry
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
    it. Both published without --allow-nonfinite; train.csv and holdout.csv beside the store."""
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
    for name, columns in (("houses", imputing), ("houses-scaled", scaled)):
        pipe = Pipeline([("ct", columns), ("ridge", Ridge())]).fit(frame, train.price)
        if name == "houses":
            holdout_frame = holdout[[*NUMBERS, "city"]].astype({c: "float32" for c in NUMBERS})
            np.save(work / "sklearn.npy", pipe.predict(holdout_frame))
        (work / f"{name}.onnx").write_bytes(to_onnx(pipe, frame[:1]).SerializeToString())
        assert (
            main(["--store", str(store), "publish", str(work / f"{name}.onnx"), "--name", name])
            == 0
        )
    return work


def test_publish_reads_the_imputer_and_says_so(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Registry(LocalStore(published / "store"))
    finite = {s.name: s.finite for s in registry.manifest("houses", "1").inputs}
    assert finite == {"area": False, "rooms": False, "age": False, "city": False}
    scaled = {s.name: s.finite for s in registry.manifest("houses-scaled", "1").inputs}
    assert scaled == {"area": False, "rooms": True, "age": False, "city": False}
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
    mae = np.abs(np.load(published / "sklearn.npy") - truth).mean()
    assert metrics["mae"] == pytest.approx(mae, rel=1e-4), metrics


def test_baseline_and_batch_take_the_gaps_the_graph_imputes(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = ["--store", str(published / "store")]
    assert main([*cli, "baseline", "houses:1", str(published / "train.csv")]) == 0
    assert main([*cli, "batch", "houses", str(published / "holdout.csv")]) == 0
    assert "scored 80 of 80 rows" in capsys.readouterr().out
    scored = pd.read_csv(published / "store/batch/houses/output/holdout.csv")
    np.testing.assert_allclose(scored.pred_variable, np.load(published / "sklearn.npy"), rtol=1e-5)
    # `rooms` of the other model is scaled, never imputed: an empty cell is still refused.
    assert main([*cli, "baseline", "houses-scaled", str(published / "train.csv")]) == 0
    gap = {"area": [50.0, 60.0], "rooms": [None, 2.0], "age": [3.0, None], "city": ["nice"] * 2}
    pd.DataFrame(gap).to_csv(published / "gap.csv", index=False)
    assert main([*cli, "batch", "houses-scaled", str(published / "gap.csv")]) == 0
    errors = (published / "store/batch/houses-scaled/output/gap.csv.errors.jsonl").read_text()
    assert "column 'rooms' is a missing value" in errors and len(errors.splitlines()) == 1, errors


@pytest.fixture
def server(published: Path) -> Iterator[ServeProcess]:
    yield from start_serve(published / "store")


def test_a_null_is_answered_as_predict_answers_it(published: Path, server: ServeProcess) -> None:
    holdout = pd.read_csv(published / "holdout.csv")
    rows = holdout[[*NUMBERS, "city"]].head(8)
    records = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()} for _, row in rows.iterrows()
    ]
    assert any(None in r.values() for r in records)
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/models/houses/versions/1/predict",
        data=json.dumps({"instances": records}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        values = np.array(json.loads(answer.read())["outputs"]["variable"]).ravel()
    np.testing.assert_allclose(values, np.load(published / "sklearn.npy")[:8], rtol=1e-5)
