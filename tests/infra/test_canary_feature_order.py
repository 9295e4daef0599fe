"""A rollout's candidate, or a canary, must read a row sent by position as the baseline does.

A weekly retrain on a CSV whose columns came in another order (the spec leaving
`dataset.features` to the file's order) learned `[tenure, income, age]` where production read
`[age, income, tenure]`: records by name were answered alike, but a caller's positional
`{"inputs": [[70, 50000, 2]]}` got `churn` from production and `stay` from the candidate, a 200
each, and `aiaas rollout` went to 100% (hunt_journey8 1). The real CLI and control plane on a
real directory store; the versions are ONNX files published by `aiaas publish`, the candidate
the baseline's network with its weight rows in the candidate's feature order (what training on
the reordered file learns), and the answers the predict function's own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from onnx import TensorProto, helper, numpy_helper

from functions.control.app import create_app
from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.functions.test_predict_events import http_event

FEATURES = ["age", "income", "tenure"]
MOVED = ["tenure", "income", "age"]  # the file's columns in week 2
WEIGHTS = np.array([[0.2, -0.2], [0.0, 0.0], [-0.3, 0.3]], np.float32)  # rows: FEATURES


def _classifier(path: Path, features: list[str]) -> Path:
    """logits = x @ W, float32 [N, 3] -> [N, 2], x's columns being `features`."""
    weights = WEIGHTS[[FEATURES.index(name) for name in features]]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["logits"])],
        "churn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])],
        initializer=[numpy_helper.from_array(weights, "W")],
    )
    return onnx_factory.save(graph, path)


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """m:1 week 1 (production), m:2 week 2 (the columns moved), m:3 week 1's order again."""
    root = tmp_path / "store"
    for version, features in (("1", FEATURES), ("2", MOVED), ("3", FEATURES)):
        path = _classifier(tmp_path / f"{version}.onnx", features)
        argv = ["--store", str(root), "publish", str(path), "--name", "m", "--version", version]
        argv += ["--labels", "churn,stay", "--features", ",".join(features)]
        assert main([*argv, *(["--alias", "production"] if version == "1" else [])]) == 0
    capsys.readouterr()
    return root


def _label(store: Path, version: str, body: dict[str, object]) -> str:
    pool = ModelPool(Registry(LocalStore(store)), ArtifactCache(LocalStore(store), store / "c"))
    service = service_from_env({"AIAAS_MODEL": "m"}, pool)
    path = f"/models/m/versions/{version}/predict"
    answer = service.handle(http_event("POST", path, json.dumps(body)))
    assert answer["statusCode"] == 200, answer
    return str(json.loads(answer["body"])["predictions"][0]["label"])


def test_the_two_versions_answer_records_alike_and_positional_rows_apart(store: Path) -> None:
    """What the refusal stands for: both versions learned the same thing, by name."""
    record = {"instances": [{"age": 70, "income": 50000, "tenure": 2}]}
    assert _label(store, "1", record) == _label(store, "2", record) == "churn"
    positional = {"inputs": [[70, 50000, 2]]}
    assert _label(store, "1", positional) == "churn"
    assert _label(store, "2", positional) == "stay"  # read as tenure 70, age 2


def test_a_rollout_or_canary_reading_features_in_another_order_is_refused(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    said = (
        "(it reads its features in another order (it: tenure, income, age; the baseline: age, "
        "income, tenure): a row sent by position (simple JSON `inputs`, an OIP tensor) would be "
        "read as other features, its value 1 as 'tenure', not 'age', and answered wrong with a "
        "200 (records by name are read alike)): export it reading [age, income, tenure] in that "
        "order (the baseline's), or, if only its --features were given out of order, publish it "
        "again with --features age,income,tenure"
    )
    rollout = ("rollout", "m", "2", "--metrics", "http://127.0.0.1:31079/metrics")
    for argv in (rollout, ("promote", "m", "2", "--weight", "0.3")):
        code = main(["--store", str(store), *argv])
        err = capsys.readouterr().err
        assert code == 1 and "version 2 of m does not answer as 1 does " + said in err, err
        assert "move every caller to it at once" not in err, err  # as wrong for every caller
    answer = TestClient(create_app(LocalStore(store))).put(
        "/control/models/m/aliases/production", json={"weights": {"1": 0.7, "2": 0.3}}
    )
    assert answer.status_code == 422 and said in answer.json()["error"], answer.text
    production = Registry(LocalStore(store)).alias_target("m", "production")
    assert production is not None and production.describe() == "1"  # nothing moved


def test_a_canary_reading_the_same_order_is_taken(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--store", str(store), "promote", "m", "3", "--weight", "0.3"]) == 0
    assert "another order" not in capsys.readouterr().err


def test_a_whole_promote_is_warned_and_the_way_back_is_a_rollback(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A promote without --weight took the reordered version with no word while a canary of it
    was refused; then a canary or rollout back to the old production was refused with advice to
    retrain it (rev14 2)."""
    warned = (
        "warning: version 2 of m reads its features in another order than 1 (version 2: tenure, "
        "income, age; version 1: age, income, tenure): a row its callers send by position "
        "(simple JSON `inputs`, an OIP tensor) in 1's order is read as other features, its value "
        "1 as 'tenure', not 'age', and answered wrong with a 200 (records by name are read "
        "alike); move such callers to records by name, or move back\n"
    )
    assert main(["--store", str(store), "promote", "m", "2"]) == 0
    assert capsys.readouterr().err == warned
    back = "it served the alias before: move every caller back to it at once (`aiaas rollback m --to 1`)"
    rollout = ("rollout", "m", "1", "--metrics", "http://127.0.0.1:31170/metrics")
    for argv in (rollout, ("promote", "m", "1", "--weight", "0.5")):
        code = main(["--store", str(store), *argv])
        err = capsys.readouterr().err
        assert code == 1 and err.rstrip().endswith(back), err
        assert "retrain" not in err, err
    assert main(["--store", str(store), "rollback", "m"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("m@production -> 1 (rolled back from 2)"), out
    assert "warning: version 1 of m reads its features in another order than 2" in err, err


def test_the_control_plane_says_a_whole_move_to_another_order(store: Path) -> None:
    client = TestClient(create_app(LocalStore(store)))
    answer = client.put("/control/models/m/aliases/production", json={"version": "2"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["warnings"] == [
        "version 2 of m reads its features in another order than 1 (version 2: tenure, income, "
        "age; version 1: age, income, tenure): a row its callers send by position (simple JSON "
        "`inputs`, an OIP tensor) in 1's order is read as other features, its value 1 as "
        "'tenure', not 'age', and answered wrong with a 200 (records by name are read alike); "
        "move such callers to records by name, or move back"
    ]
    # The ETag is the stored record's: a conditional move on it goes through.
    etag = answer.headers["ETag"]
    again = client.put(
        "/control/models/m/aliases/production", json={"version": "3"}, headers={"If-Match": etag}
    )
    assert again.status_code == 200 and again.json()["warnings"] is not None, again.text
    same = client.put("/control/models/m/aliases/production", json={"version": "3"})
    assert same.status_code == 200 and same.json()["warnings"] is None, same.text


def test_the_control_plane_rollback_says_a_move_to_another_order(store: Path) -> None:
    """`POST .../rollback` moves every caller at once, as a PUT without a weight and as `aiaas
    rollback` (which warns): it answered `warnings: null` on a move between orders (rev15 5)."""
    client = TestClient(create_app(LocalStore(store)))
    url = "/control/models/m/aliases/production"
    assert client.put(url, json={"version": "2"}).status_code == 200
    back = client.post(f"{url}/rollback", json={})
    assert back.status_code == 200 and back.json()["version"] == "1", back.text
    warned = back.json()["warnings"]  # was None
    assert warned is not None and warned[0].startswith(
        "version 1 of m reads its features in another order than 2"
    ), warned
    assert client.put(url, json={"version": "2"}).status_code == 200
    pinned = client.post(f"{url}/rollback", json={"to": "1"})
    assert pinned.status_code == 200 and pinned.json()["warnings"] is not None, pinned.text
    assert client.put(url, json={"version": "3"}).status_code == 200  # 2 -> 3
    to_one = client.post(f"{url}/rollback", json={"to": "1"})  # 3 -> 1: the same order
    assert to_one.status_code == 200 and to_one.json()["warnings"] is None, to_one.text


def test_a_version_aiaas_trained_is_told_the_dataset_features_line(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version published with `aiaas publish` has no spec: the refusal told it to set
    `dataset.features` in it (rev14 4). One `aiaas train` made (its manifest records the run)
    is told that line."""
    manifest = store / "models" / "m" / "versions" / "2" / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "training": {"recipe": "mlp"}}))
    code = main(["--store", str(store), "promote", "m", "2", "--weight", "0.3"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.rstrip().endswith(
        "(records by name are read alike)): retrain it with `dataset.features: [age, income, "
        "tenure]` (the baseline's order) in its spec"
    ), err
