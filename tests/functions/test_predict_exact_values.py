"""Values at the edges of JSON and numpy through `POST /models/{name}/predict`: never a 500,
never a silently wrong number.

numpy turns a list mixing small ints and ints past int64's range into float64, exact only to
2**53, and float(2**64 - 1) rounds to 2**64, which a cast wraps to 0; orjson writes no 0-d
array. Each case below gave a wrong answer or a 500 before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from onnx import TensorProto, helper

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_events import body_of, http_event


def _publish(root: Path, name: str, path: Path) -> PredictService:
    store = LocalStore(root / "store")
    registry = Registry(store)
    registry.publish(onnx_factory.manifest_for(path, name, "1"), path)
    pool = ModelPool(registry, ArtifactCache(store, root / f"cache-{name}"))
    return service_from_env({"AIAAS_MODEL": name}, pool)


def _predict(service: PredictService, name: str, doc: Any) -> tuple[int, Any]:
    response = service.handle(http_event("POST", f"/models/{name}/predict", json.dumps(doc)))
    return response["statusCode"], body_of(response)


@pytest.fixture(scope="module")
def uint64(tmp_path_factory: pytest.TempPathFactory) -> PredictService:
    root = tmp_path_factory.mktemp("u64")
    path = onnx_factory.identity(root / "u64.onnx", elem=TensorProto.UINT64)
    return _publish(root, "u64", path)


@pytest.mark.parametrize(
    "row", [[1, 2, 2**64 - 1], [2**63 + 1, 5, 6], [2**53 + 1, 0, 2**63], [0, 1, 2]]
)
def test_uint64_json_integers_come_back_exact(uint64: PredictService, row: list[int]) -> None:
    status, body = _predict(uint64, "u64", {"inputs": [row]})
    assert status == 200, body
    assert body["outputs"]["y"] == [row]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([1, 2, 2**64], "outside"),  # one past uint64
        ([1.0, 2.0, 1.8446744073709552e19], "outside"),  # 2**64 as a float
        ([-1, 2**63 + 1, 0], "outside its range"),
    ],
)
def test_uint64_values_out_of_range_are_422(
    uint64: PredictService, row: list[Any], message: str
) -> None:
    status, body = _predict(uint64, "u64", {"inputs": [row]})
    assert status == 422, body
    assert message in body["error"]


def test_int64_extremes_come_back_exact(tmp_path: Path) -> None:
    path = onnx_factory.identity(tmp_path / "i64.onnx", elem=TensorProto.INT64)
    service = _publish(tmp_path, "i64", path)
    row = [2**62 + 1, 2**63 - 1, -(2**63)]
    status, body = _predict(service, "i64", {"inputs": [row]})
    assert (status, body["outputs"]["y"]) == (200, [row])


def test_a_rank_0_output_is_answered_as_a_number(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0)],
        "sum",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, [])],
    )
    service = _publish(tmp_path, "sum", onnx_factory.save(graph, tmp_path / "sum.onnx"))
    status, body = _predict(service, "sum", {"inputs": [[1, 2, 3], [4, 5, 6]]})
    assert (status, body["outputs"]) == (200, {"total": 21.0})


@pytest.mark.parametrize("row", [[2**53 + 1, 2.0, 3], [2**63 + 1, 7.0, 0]])
def test_big_integers_beside_whole_floats_come_back_exact(
    uint64: PredictService, row: list[Any]
) -> None:
    """numpy reads such a list as float64: the exact integer beside the float must not be
    rounded (2**53 + 1 to 2**53) while the whole floats are read as integers, as elsewhere."""
    status, body = _predict(uint64, "u64", {"inputs": [row]})
    assert status == 200, body
    assert body["outputs"]["y"] == [[int(v) for v in row]]


def test_a_float_past_2_53_beside_a_big_integer_is_422(uint64: PredictService) -> None:
    """float(2**60) was read as 2**60; JSON writes it 1.152921504606847e+18, which may mean
    ...847000 (tests/functions/test_predict_wide_integer_floats.py)."""
    status, body = _predict(uint64, "u64", {"inputs": [[2**53 + 1, float(2**60), 1]]})
    assert status == 422, body
    assert "past 2^53 was read as 1152921504606846976" in body["error"]


def test_a_fraction_beside_a_big_integer_is_422(uint64: PredictService) -> None:
    status, body = _predict(uint64, "u64", {"inputs": [[2**53 + 1, 2.5, 3]]})
    assert status == 422, body
    assert "2.5 is not a whole number" in body["error"]
