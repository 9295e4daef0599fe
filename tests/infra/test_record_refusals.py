"""A record the model cannot take is named by its index (predict API) and by its line in the
file (`publish --data`, which decodes the file's rows as a predict body): a DataFrame export's
float column holding a text beside nulls, or a string column holding a null, was refused as
"input 'age' expects float32 numbers; got mixed or null values" / "input 'region' holds a
null, ...": no record, no value, no line, in a file of thousands (hunt_journey13 2).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import body_of, http_event

NAME = "claims"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, Path, pd.DataFrame]:
    """(store with `claims` published, its ONNX file, labelled rows): `age` imputed, `region`
    a category column fit without gaps (a null there is refused, not a category)."""
    rng = np.random.default_rng(0)
    n = 80
    age = rng.normal(45, 10, n).astype(np.float32)
    age[::7] = np.nan
    frame = pd.DataFrame({"age": age, "region": rng.choice(["north", "south"], n)})
    y = (frame["region"] == "south").to_numpy().astype(int)
    columns = ColumnTransformer(
        [
            ("num", SimpleImputer(), ["age"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]),
        ]
    )
    pipeline = Pipeline([("prep", columns), ("clf", LogisticRegression())]).fit(frame, y)
    root = tmp_path_factory.mktemp("record-refusals")
    model = root / "claims.onnx"
    model.write_bytes(to_onnx(pipeline, frame[:1]).SerializeToString())
    store = LocalStore(root / "store")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["--store", store.uri, "publish", str(model), "--name", NAME]) == 0
    return store, model, frame.assign(label=y)[:6]


def _predict(store: LocalStore, tmp_path: Path, records: list[dict[str, Any]]) -> Any:
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": NAME}, pool)
    body = json.dumps({"instances": records})
    return service.handle(http_event("POST", f"/models/{NAME}/predict", body))


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("age", "abc", "instances[3].age must be a number (float32); got 'abc'"),
        ("age", True, "instances[3].age must be a number (float32); got true"),
        ("region", None, "instances[3].region is null, which a string input cannot: send"),
    ],
)
def test_the_predict_api_names_the_record_it_refuses(
    published: tuple[LocalStore, Path, pd.DataFrame],
    tmp_path: Path,
    field: str,
    value: Any,
    said: str,
) -> None:
    store, _, rows = published
    records = json.loads(rows.to_json(orient="records"))  # record 0's age: null, a gap
    assert records[0]["age"] is None
    response = _predict(store, tmp_path, records)
    assert response["statusCode"] == 200, response["body"]  # the rows as they are: scored
    records[3][field] = value
    response = _predict(store, tmp_path, records)
    assert response["statusCode"] == 422
    assert body_of(response)["error"].startswith(said)


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_publish_data_names_the_line_of_the_record_it_refuses(
    published: tuple[LocalStore, Path, pd.DataFrame], tmp_path: Path, kind: str
) -> None:
    store, model, rows = published
    bad = rows.astype({"age": object})
    bad.loc[4, "age"] = "abc"  # the 5th row: line 6 of a CSV (its header is line 1), 5 of JSONL
    path = tmp_path / f"held.{kind}"
    if kind == "csv":
        bad.to_csv(path, index=False)
    else:
        bad.to_json(path, orient="records", lines=True)
    argv = ["--store", store.uri, "publish", str(model), "--name", "held", "--data", str(path)]
    said = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(said):
        assert main([*argv, "--no-progress"]) != 0
    line = 6 if kind == "csv" else 5
    assert f"line {line}: age must be a number (float32); got 'abc'" in said.getvalue()
