"""A model trained on a CSV answers records by column name and batch-scores its own training file."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from functions.predict.service import service_from_env
from functions.runtime.batch.layout import input_key
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import batch_support
from tests.functions.test_predict_events import body_of, http_event
from tests.training.conftest import Published
from training.datasets import BUNDLED_DIR

IRIS = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def _iris_rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((BUNDLED_DIR / "iris.csv").read_text())))


def test_manifest_and_show_list_the_feature_names(
    published: Published, capsys: pytest.CaptureFixture[str]
) -> None:
    assert published.registry.resolve("tiny-logistic@production").features == IRIS
    # Image pixels and token ids have no names worth sending: no features.
    assert published.registry.resolve("tiny-mlp@production").features == ()
    assert main(["--store", str(published.store_dir), "show", "tiny-logistic@production"]) == 0
    assert f"features:  {', '.join(IRIS)}" in capsys.readouterr().out


def test_records_through_the_handler_match_the_batch_scored_training_file(
    published: Published, tmp_path: Path
) -> None:
    store = LocalStore(published.store_dir)
    key = input_key("tiny-logistic", "iris.csv")
    store.put_bytes(key, (BUNDLED_DIR / "iris.csv").read_bytes())  # the training file, as it is
    summary = batch_support.run(store, tmp_path, key)
    assert (summary["scored_rows"], summary["failed_rows"]) == (150, 0), summary
    scored = batch_support.read_csv(store, summary["output"])
    rows = _iris_rows()
    assert [row["species"] for row in scored] == [row["species"] for row in rows]

    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "tiny-logistic"}, pool)
    records = [
        {k: float(v) for k, v in row.items() if k in IRIS} | {"id": i} for i, row in enumerate(rows)
    ]
    response = service.handle(
        http_event("POST", "/models/tiny-logistic/predict", json.dumps({"instances": records}))
    )
    assert response["statusCode"] == 200, response["body"]
    labels = [p["label"] for p in body_of(response)["predictions"]]
    assert labels == [row["pred_label"] for row in scored]

    metadata = service.handle(http_event("GET", "/v2/models/tiny-logistic", None))
    assert body_of(metadata)["parameters"]["features"] == list(IRIS)
