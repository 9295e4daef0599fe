"""`/v2/models/NAME/explain` names the OIP datatypes an OIP caller sent and knows.

The explain route validated typed tensors as untyped JSON, so its refusals named numpy's types
(`input 'x' expects float32; got true/false values`) where infer said `FP32 (float32)` to the
same request. It now says what infer says; its leniency stays (an FP64 tensor for an FP32
input is explained, as a JSON number is), and the simple route still speaks numpy's names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.functions.test_predict_explain import post, publish, service

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("explain_names")
    publish(root, "iris", background=True)
    return root


def tensor(datatype: str, data: list[Any]) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [2, 4], "datatype": datatype, "data": data}],
            "parameters": {"samples": 14}}  # fmt: skip


@pytest.mark.parametrize(
    ("datatype", "data", "message"),
    [
        ("BOOL", [True] * 8, "input 'x' expects FP32 (float32); got true/false values"),
        ("BYTES", ["a"] * 8, "input 'x' value [0, 0] must be a number, FP32 (float32); got 'a'"),
    ],
)
def test_explain_v2_refusals_name_the_oip_datatype_as_infer_does(
    root: Path, datatype: str, data: list[Any], message: str
) -> None:
    svc = service(root, "iris")
    for route in ("infer", "explain"):
        status, body = post(svc, f"/v2/models/iris/{route}", tensor(datatype, data))
        assert (status, body) == (422, {"error": message}), route


def test_explain_v2_still_takes_an_fp64_tensor_and_the_simple_route_names_numpy_types(
    root: Path,
) -> None:
    svc = service(root, "iris")
    status, body = post(svc, "/v2/models/iris/explain", tensor("FP64", np.ravel(ROWS).tolist()))
    assert status == 200, body
    assert [o["name"] for o in body["outputs"]][:1] == ["attributions"]
    status, body = post(svc, "/models/iris/explain", {"inputs": [[True] * 4] * 2})
    assert (status, body) == (422, {"error": "input 'x' expects float32; got true/false values"})
