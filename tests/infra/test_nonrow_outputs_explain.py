"""Explaining a model whose output is not a row for each row sent: boxes [K, 4] found among the
rows, a sum over the request [1, F], detections [N, K, 6] whose K depends on the rows sent
together. `aiaas explain` printed a traceback ("cannot reshape array of size 8 into shape
(5,newaxis)", "operands could not be broadcast") and POST /models/{name}/explain answered 500
"internal error"; now a 422 naming the output and why. Real parts: the CLI's publish, baseline
and explain, the predict handler's explain route."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import nonrow_models
from tests.functions.test_predict_events import body_of, http_event

ROW = [[0.3, 0.8, 0.3, -1.3]]


def _published(tmp_path: Path, name: str, build: str) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    model = getattr(nonrow_models, build)(tmp_path / f"{name}.onnx")
    assert main(["--store", store.uri, "publish", str(model), "--name", name]) == 0
    return store


def _explain_http(tmp_path: Path, store: LocalStore, name: str, inputs: object) -> dict:
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": name}, pool)
    # 48: the fewest the [8, 6] window takes (24 patches, runs of steps of one feature, 2 a
    # patch); all 14 of a 4-feature row
    body = json.dumps({"inputs": inputs, "parameters": {"samples": 48}})
    return service.handle(http_event("POST", f"/models/{name}/explain", body))


@pytest.mark.parametrize(
    ("build", "output", "shape"),
    [("boxes", "boxes", "answers ["), ("summed", "s", "answers [1, 4]")],
)
def test_an_output_not_one_row_a_row_is_refused_422_by_cli_and_route(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], build: str, output: str, shape: str
) -> None:
    store = _published(tmp_path, build, build)
    x = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    pd.DataFrame(x, columns=[f"x_{i}" for i in range(4)]).to_csv(tmp_path / "x.csv", index=False)
    args = ["--store", store.uri, "baseline", build, str(tmp_path / "x.csv"), "--clusters", "5"]
    assert main(args) == 0
    capsys.readouterr()
    response = _explain_http(tmp_path, store, build, ROW)
    assert response["statusCode"] == 422, response["body"]
    error = body_of(response)["error"]
    assert f"output '{output}' {shape}" in error and "one row of values for each row" in error
    code = main(["--store", store.uri, "explain", build, "--inputs", json.dumps(ROW), "--json"])
    err = capsys.readouterr().err
    assert code != 0
    assert f"output '{output}' {shape}" in err and "Traceback" not in err


def test_detections_whose_size_changes_with_the_rows_sent_are_refused_422(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _published(tmp_path, "det", "detections")
    x = nonrow_models.images(40)
    np.save(tmp_path / "x.npy", x)
    assert main(["--store", store.uri, "baseline", "det", str(tmp_path / "x.npy")]) == 0
    capsys.readouterr()
    one = x[:1].copy()
    one[0, :, 0] = -1.0  # no positive cell: K = 0 for this row alone, not for the background
    response = _explain_http(tmp_path, store, "det", one.tolist())
    assert response["statusCode"] == 422, response["body"]
    error = body_of(response)["error"]
    assert "output 'dets' answers" in error and "depends on the rows sent with them" in error
