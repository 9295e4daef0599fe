"""Parquet's typed columns become what the same table written by pandas as a CSV sends: a bool
column the categories True / False, dates and timestamps their CSV text. A bool trained as 0/1
refused every served True, and a date learned as '2024-01-02T00:00:00.000000' matched no
row, so each was scored as an unseen category (0.87 against 0.99 accuracy), silently."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow", reason="Parquet is the optional 'parquet' extra")
pytest.importorskip("torch", reason="training needs torch: pip install 'aiaas[training]'")

import pyarrow.parquet as pq  # noqa: E402

from functions.predict.service import service_from_env  # noqa: E402
from functions.runtime.cache import ArtifactCache  # noqa: E402
from functions.runtime.pool import ModelPool  # noqa: E402
from functions.runtime.registry import Registry  # noqa: E402
from functions.runtime.store import LocalStore  # noqa: E402
from tests.batch_support import read_csv, run  # noqa: E402
from tests.functions.test_predict_events import body_of, http_event  # noqa: E402
from tests.training.conftest import tiny_spec  # noqa: E402
from training.datasets import load_raw  # noqa: E402
from training.spec import DatasetSpec  # noqa: E402

DAYS = [dt.datetime(2024, 1, d) for d in (1, 2, 3, 4)]


def _column(path: Path, array: Any) -> list[Any]:
    pq.write_table(pa.table({"c": array, "y": [0] * len(array)}), path)
    raw = load_raw(DatasetSpec(path=str(path), target="y"), "tabular")
    return list(raw.x[:, 0])


@pytest.mark.parametrize(
    ("array", "cells"),
    [
        (pa.array([True, None, False]), ["True", "", "False"]),
        (pa.array([DAYS[0], None], pa.timestamp("us")), ["2024-01-01", ""]),
        (pa.array([dt.date(2024, 1, 2)], pa.date32()), ["2024-01-02"]),
        (
            pa.array([DAYS[0], dt.datetime(2024, 1, 2, 10, 30)], pa.timestamp("ns")),
            ["2024-01-01 00:00:00", "2024-01-02 10:30:00"],
        ),
        (
            pa.array([dt.datetime(2024, 1, 2, 0, 0, 0, 500_000)], pa.timestamp("us", tz="UTC")),
            ["2024-01-02 00:00:00.500000+00:00"],
        ),
    ],
)
def test_a_typed_column_reads_as_its_csv_text(tmp_path: Path, array: Any, cells: list[str]) -> None:
    assert _column(tmp_path / "d.parquet", array) == cells


def test_the_same_table_from_pandas_scores_as_trained(
    tmp_path: Path, run_tiny: Callable[..., Any]
) -> None:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    rows = 400
    flag = rng.random(rows) < 0.5
    day = rng.integers(0, 4, rows)
    noise = rng.normal(size=rows)
    y = np.where(flag ^ (day >= 2), "yes", "no")  # only the two typed columns decide
    frame = pd.DataFrame({"noise": noise, "flag": flag, "day": [DAYS[d] for d in day], "y": y})
    frame.to_parquet(tmp_path / "d.parquet")
    spec = tiny_spec(
        "mlp", name="typed", epochs=40, learning_rate=0.03,
        dataset={"path": str(tmp_path / "d.parquet"), "target": "y"},
        # the typed columns read as their CSV text are the point, not dynamo's export: the
        # documented TorchScript exporter, the same model, inputs and categories
        export={"exporter": "torchscript"},
    )  # fmt: skip
    result = run_tiny(spec)
    assert result.manifest.metrics["test"]["accuracy"] == 1.0
    columns = result.manifest.preprocessing["columns"]
    assert columns["flag"]["categories"] == ["False", "True"]
    assert columns["day"]["categories"] == [f"2024-01-0{d}" for d in (1, 2, 3, 4)]
    store = LocalStore(tmp_path / "store")
    Registry(store).set_alias("typed", "production", "1")
    # pandas' own CSV of the table (True/False, 2024-01-02): every row as trained.
    buffer = io.StringIO()
    frame.drop(columns="y").to_csv(buffer, index=False)
    store.put_bytes("batch/typed/input/rows.csv", buffer.getvalue().encode())
    summary = run(store, tmp_path / "batch", "batch/typed/input/rows.csv")
    assert (summary["scored_rows"], summary["failed_rows"]) == (rows, 0), summary
    labels = [r["pred_label"] for r in read_csv(store, "batch/typed/output/rows.csv")]
    assert np.mean(np.array(labels) == y) == 1.0  # unseen categories: ~0.5
    # A JSON true for the category column says what to send instead.
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "typed"}, pool)
    record = {"noise": 0.1, "flag": True, "day": "2024-01-02"}
    body = json.dumps({"instances": [record]})
    response = service.handle(http_event("POST", "/models/typed/predict", body))
    assert response["statusCode"] == 422
    assert body_of(response)["error"].startswith(
        "input 'flag' expects string; got true/false values: send the text the training data "
        'held ("True" / "False" from Parquet or pandas)'
    )
    body = json.dumps({"instances": [{**record, "flag": "True"}]})
    response = service.handle(http_event("POST", "/models/typed/predict", body))
    assert response["statusCode"] == 200, response["body"]
