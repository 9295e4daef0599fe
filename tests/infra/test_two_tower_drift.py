"""Drift of a two-tower model: its embedding `user_emb` [N, 16] first, its `score` [N, 1] second,
no classes. `aiaas baseline` binned the first value of the FIRST output as the prediction, so
`aiaas monitor` reported the drift of one embedding coordinate; the score is now binned (as
`aiaas publish --data` and `aiaas compare` score it) and the baseline names it. A baseline
written before (no output named, fitted on the first output) still bins the first output.
Real parts: the CLI's publish, baseline and monitor, the predict service and its drift monitor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import orjson
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.drift.baseline import BASELINE_FILE, quantile_edges, value_bins
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.functions.test_predict_events import http_event
from tests.publishing import published_cli

FEATURES = 4
ROWS = 1000


def two_tower(path: Path) -> Path:
    """user_emb = x @ E (its column 0 is x_0), score = x @ w (mostly x_3): a shift of x_3 moves
    the score and not the embedding's first value."""
    rng = np.random.default_rng(7)
    emb = rng.normal(size=(FEATURES, 16)).astype(np.float32)
    emb[:, 0] = [1.0, 0.0, 0.0, 0.0]
    w = np.array([[0.1], [0.0], [0.0], [1.0]], np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "E"], ["user_emb"]),
        helper.make_node("MatMul", ["x", "w"], ["score"]),
    ]
    outputs: onnx_factory.Tensors = {
        "user_emb": (TensorProto.FLOAT, ["N", 16]),
        "score": (TensorProto.FLOAT, ["N", 1]),
    }
    inputs: onnx_factory.Tensors = {"x": (TensorProto.FLOAT, ["N", FEATURES])}
    weights = [numpy_helper.from_array(emb, "E"), numpy_helper.from_array(w, "w")]
    return onnx_factory.over_rows(path, nodes, inputs, outputs, weights)


def rows(seed: int, shift: float = 0.0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(ROWS, FEATURES)).round(4).astype(np.float32)
    x[:, 3] += shift
    return x


def run(model: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    emb, score = session.run(["user_emb", "score"], {"x": x})
    return {"user_emb": emb, "score": score}


@pytest.fixture
def baselined(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[LocalStore, Path]:
    model = two_tower(tmp_path / "m.onnx")
    store = published_cli(tmp_path, model)
    columns = [f"x_{i}" for i in range(FEATURES)]
    pd.DataFrame(rows(0), columns=columns).to_csv(tmp_path / "rows.csv", index=False)
    argv = ["--store", store.uri, "baseline", "m:1", str(tmp_path / "rows.csv"), "--clusters", "5"]
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    return store, model


def baseline_doc(store: LocalStore) -> dict[str, Any]:
    return json.loads(store.get_bytes(f"{version_prefix('m', '1')}/{BASELINE_FILE}"))  # type: ignore[no-any-return]


def serve(store: LocalStore, tmp_path: Path, x: np.ndarray, asked: str) -> None:
    """`x` in requests of 20: simple JSON, then OIP naming only output `asked`, alternately."""
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "m"}, pool)
    for number, start in enumerate(range(0, len(x), 20)):
        chunk = x[start : start + 20]
        if number % 2:
            tensor = {"name": "x", "shape": list(chunk.shape), "datatype": "FP32"}
            doc = {"inputs": [{**tensor, "data": chunk.ravel().tolist()}],
                   "outputs": [{"name": asked}]}  # fmt: skip
            path = "/v2/models/m/infer"
        else:
            doc, path = {"inputs": chunk.tolist()}, "/models/m/predict"
        answer = service.handle(http_event("POST", path, orjson.dumps(doc)))
        assert answer["statusCode"] == 200, answer["body"]
        if number % 2:  # the output drift needs is computed, not answered
            assert [o["name"] for o in orjson.loads(answer["body"])["outputs"]] == [asked]
    assert service.plane.drift is not None
    service.plane.drift.flush()


def monitored(store: LocalStore, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    code = main(["--store", store.uri, "monitor", "m", "--window", "10m", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def predicted_rows(store: LocalStore) -> int:
    """The served rows binned as predictions, in every snapshot written."""
    keys = store.list_keys("monitoring/m/1/")
    return sum(sum(json.loads(store.get_bytes(k))["prediction"]) for k in keys)


def test_the_baseline_bins_the_score_and_names_it(
    baselined: tuple[LocalStore, Path], tmp_path: Path
) -> None:
    store, model = baselined
    prediction = baseline_doc(store)["prediction"]
    assert prediction["output"] == "score"
    score = run(model, rows(0))["score"][:, 0].astype(np.float64)
    np.testing.assert_allclose(prediction["edges"], quantile_edges(score, 10), rtol=1e-6)
    assert sum(prediction["counts"]) == ROWS


@pytest.mark.parametrize(("shift", "drifted"), [(0.0, []), (2.0, ["x_3", "(prediction)"])])
def test_served_scores_drift_with_the_score_not_the_embedding(
    baselined: tuple[LocalStore, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    shift: float,
    drifted: list[str],
) -> None:
    # OIP requests naming only the embedding still have the score computed and binned.
    store, _ = baselined
    serve(store, tmp_path, rows(1, shift), asked="user_emb")
    doc = monitored(store, capsys)
    assert (doc["rows"], doc["enough_rows"]) == (ROWS, True)
    assert doc["drifted"] == drifted  # the embedding's x_0 did not move: it showed none
    assert predicted_rows(store) == ROWS


def test_a_baseline_written_before_it_named_its_output_bins_the_first_output(
    baselined: tuple[LocalStore, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As `aiaas baseline` wrote it before: user_emb[:, 0]'s bins, no output named.
    store, model = baselined
    doc = baseline_doc(store)
    first = run(model, rows(0))["user_emb"][:, 0].astype(np.float64)
    doc["prediction"] = value_bins(first).to_dict()
    assert "output" not in doc["prediction"]
    store.put_bytes(f"{version_prefix('m', '1')}/{BASELINE_FILE}", json.dumps(doc).encode())
    # The score moves, x_0 does not: binned on the old edges, the score showed as drift. OIP
    # requests naming only the score have the embedding computed for the histograms.
    serve(store, tmp_path, rows(1, 2.0), asked="score")
    report = monitored(store, capsys)
    assert report["drifted"] == ["x_3"]
    assert predicted_rows(store) == ROWS


def test_a_baseline_naming_an_output_the_model_lacks_is_not_monitored(
    baselined: tuple[LocalStore, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # Copied by hand from another model: its rows would never find that output to bin.
    store, _ = baselined
    doc = baseline_doc(store)
    doc["prediction"]["output"] = "item_score"
    store.put_bytes(f"{version_prefix('m', '1')}/{BASELINE_FILE}", json.dumps(doc).encode())
    capsys.readouterr()
    assert main(["--store", store.uri, "monitor", "m", "--no-png"]) == 1
    assert capsys.readouterr().err.startswith(
        "aiaas monitor: error: m:1 is not monitored: its baseline's predictions are of output "
        "'item_score', which the model lacks, so its predict function counts no rows;"
    )
