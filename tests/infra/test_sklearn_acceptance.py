"""Acceptance: a scikit-learn model exported by skl2onnx with its default options (ZipMap
probabilities), published with `aiaas publish` and no flags, answers exactly what scikit-learn's
own `predict` answers on the whole wine test set: simple JSON and the Open Inference Protocol
over real HTTP (`aiaas serve`; tritonclient, unchanged, for binary tensors), and batch CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_serve import start_serve
from tests.sklearn_models import FEATURES, Exported, export

MODEL = "wine"


@dataclass
class Published:
    root: Path
    store: LocalStore
    model: Exported


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    root = tmp_path_factory.mktemp("sklearn-acceptance")
    model = export("pipeline", root)  # StandardScaler + LogisticRegression, classes 0, 1, 2
    store = LocalStore(root / "store")
    assert main(["--store", store.uri, "publish", str(model.path), "--name", MODEL]) == 0
    return Published(root, store, model)


@pytest.fixture(scope="module")
def base_url(published: Published) -> Iterator[str]:
    for server in start_serve(published.store.root):
        yield server.base


def test_simple_json_over_http(published: Published, base_url: str) -> None:
    rows = published.model.x_test.tolist()
    answer = httpx.post(f"{base_url}/models/{MODEL}/predict", json={"inputs": rows}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [p["label"] for p in body["predictions"]] == published.model.expected
    proba = published.model.estimator.predict_proba(published.model.x_test)
    np.testing.assert_allclose(body["outputs"]["output_probability"], proba, rtol=1e-4, atol=1e-5)


def test_oip_json_over_http(published: Published, base_url: str) -> None:
    x = published.model.x_test
    doc = {
        "inputs": [
            {"name": "X", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}
        ]
    }
    answer = httpx.post(f"{base_url}/v2/models/{MODEL}/infer", json=doc, timeout=30)
    assert answer.status_code == 200, answer.text
    outputs = {item["name"]: item for item in answer.json()["outputs"]}
    assert outputs["output_label"]["datatype"] == "INT64"
    assert [str(v) for v in outputs["output_label"]["data"]] == published.model.expected
    probability = outputs["output_probability"]
    assert (probability["datatype"], probability["shape"]) == ("FP32", [len(x), 3])
    best = np.reshape(probability["data"], (len(x), 3)).argmax(axis=1)
    assert [published.model.classes[i] for i in best] == published.model.expected

    metadata = httpx.get(f"{base_url}/v2/models/{MODEL}", timeout=30).json()
    assert {"name": "output_probability", "datatype": "FP32", "shape": [-1, 3]} in metadata[
        "outputs"
    ]


def test_oip_binary_with_tritonclient(published: Published, base_url: str) -> None:
    x = published.model.x_test
    client = triton.InferenceServerClient(base_url.removeprefix("http://"), network_timeout=30)
    try:
        tensor = triton.InferInput("X", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=True)
        wanted = [
            triton.InferRequestedOutput(name, binary_data=True)
            for name in ("output_label", "output_probability")
        ]
        result = client.infer(MODEL, [tensor], outputs=wanted)
    finally:
        client.close()
    labels = result.as_numpy("output_label")
    assert [str(v) for v in labels] == published.model.expected
    probability = result.as_numpy("output_probability")
    assert probability.dtype == np.float32 and probability.shape == (len(x), 3)
    np.testing.assert_allclose(
        probability, published.model.estimator.predict_proba(x), rtol=1e-4, atol=1e-5
    )


def test_reads_ignore_a_gateways_query_parameter_and_infer_still_refuses_it(
    published: Published, base_url: str
) -> None:
    """tritonclient's `query_params` (a gateway's key in the query string) reach every route.
    Model ready was a 400, which tritonclient reads as False: every model "not ready", while
    server ready ignored them. Reads ignore them now; infer refuses them as before (a typo
    there would answer a question not asked)."""
    key = {"api-key": "abc"}
    client = triton.InferenceServerClient(base_url.removeprefix("http://"), network_timeout=30)
    try:
        assert client.is_server_ready(query_params=key)
        assert client.is_model_ready(MODEL, query_params=key)
        assert client.is_model_ready(MODEL, "1", query_params=key)
        metadata = client.get_model_metadata(MODEL, query_params=key)
        assert metadata == client.get_model_metadata(MODEL)
        tensor = triton.InferInput("X", list(published.model.x_test.shape), "FP32")
        tensor.set_data_from_numpy(published.model.x_test, binary_data=True)
        with pytest.raises(triton.InferenceServerException, match="unknown query parameter"):
            client.infer(MODEL, [tensor], query_params=key)
    finally:
        client.close()
    # `version=` on a read would answer for another version than asked: still refused
    answer = httpx.get(f"{base_url}/v2/models/{MODEL}/ready", params={"version": "2"})
    assert answer.status_code == 400
    assert f"GET /v2/models/{MODEL}/versions/{{version}}/ready" in answer.json()["error"]


def test_batch_csv(published: Published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    x = published.model.x_test
    lines = [",".join(["id", *(f"X_{i}" for i in range(FEATURES))])]
    lines += [",".join([f"row{i}", *map(repr, row)]) for i, row in enumerate(x.tolist())]
    data = tmp_path / "wine-test.csv"
    data.write_text("\n".join(lines) + "\n")
    assert main(["--store", published.store.uri, "batch", MODEL, str(data)]) == 0
    text = published.store.get_bytes(f"batch/{MODEL}/output/wine-test.csv").decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    header = text.splitlines()[0].split(",")
    assert len(header) == len(set(header)), f"duplicate columns in {header}"
    assert [r["id"] for r in rows] == [f"row{i}" for i in range(len(x))]
    assert [r["pred_label"] for r in rows] == published.model.expected
    proba = published.model.estimator.predict_proba(x)
    np.testing.assert_allclose(
        [float(r["pred_score"]) for r in rows], proba.max(axis=1), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        [[float(r[f"pred_output_probability_{c}"]) for c in range(3)] for r in rows],
        proba,
        rtol=1e-4,
        atol=1e-5,
    )
