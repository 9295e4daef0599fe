"""A model without feature names is explained in the columns batch reads and writes for it
(`{input}_{i}`, what a torch export's `onnx::Gemm_0` makes onnx::Gemm_0_0, ...): explanations
said x_0, ..., which named no column of the user's own CSV."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from functions.predict.service import PredictService, service_from_env
from functions.runtime.batch.csv_header import expected_columns
from functions.runtime.cache import ArtifactCache
from functions.runtime.explain.explainer import explained_columns
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.functions.test_predict_events import body_of, http_event

INPUT = "onnx::Gemm_0"  # what torch.onnx.export names a Linear's input
COLUMNS = [f"{INPUT}_{i}" for i in range(4)]


def torch_named(path: Path) -> Path:
    model = onnx.load(onnx_factory.linear_classifier(path))
    model.graph.input[0].name = INPUT
    model.graph.node[0].input[0] = INPUT
    onnx.save(model, path)
    return path


def post(svc: PredictService, path: str, doc: object) -> dict[str, object]:
    response = svc.handle(http_event("POST", path, json.dumps(doc)))
    assert response["statusCode"] == 200, response
    answer: dict[str, object] = body_of(response)
    return answer


def test_cli_online_and_oip_explanations_name_the_columns_batch_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    model = torch_named(tmp_path / "gru.onnx")
    assert main(["--store", store.uri, "publish", str(model), "--name", "net"]) == 0
    manifest = Registry(store).manifest("net", "1")
    assert expected_columns(manifest, manifest.inputs[0]) == COLUMNS
    rows = np.random.default_rng(0).normal(size=(20, 4)).round(3)
    data = tmp_path / "rows.csv"  # one CSV, headed as batch reads it, for baseline and explain
    np.savetxt(data, rows, delimiter=",", header=",".join(COLUMNS), comments="")
    assert main(["--store", store.uri, "baseline", "net", str(data), "--clusters", "3"]) == 0
    out = tmp_path / "why.jsonl"
    argv = ["--store", store.uri, "explain", "net", "--file", str(data), "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 20 and all(line["features"] == COLUMNS for line in lines)

    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    svc = service_from_env({"AIAAS_MODEL": "net"}, pool)
    online = post(svc, "/models/net/explain", {"inputs": rows[:2].tolist()})
    assert online["features"] == COLUMNS
    tensor = {"name": INPUT, "shape": [2, 4], "datatype": "FP32", "data": rows[:2].ravel().tolist()}
    request = {"inputs": [tensor], "parameters": {"binary_data_output": False}}
    parameters = post(svc, "/v2/models/net/explain", request)["parameters"]
    assert isinstance(parameters, dict) and parameters["features"] == COLUMNS


def test_one_value_a_row_is_its_inputs_own_name_and_feature_names_stay(tmp_path: Path) -> None:
    path = onnx_factory.identity(tmp_path / "one.onnx", shape=["N", 1])
    manifest = onnx_factory.manifest_for(path, "one", "1")
    assert (
        explained_columns(manifest).names
        == ("x",)
        == tuple(expected_columns(manifest, manifest.inputs[0]))
    )
    named = dataclasses.replace(manifest, features=("age",))
    assert explained_columns(named).names == ("age",)
