"""An explanation that runs far past its estimate is stopped, not left to run.

`AIAAS_EXPLAIN_MAX_SECONDS` refuses a request by an estimate made before it runs (the model's
time per row on its background); nothing bounded the run itself: on a busy `aiaas serve` 12
rows estimated within 2 s took 4-20 s each, and in Lambda the function's timeout would cut
it with no answer. Now a row after the first, or a slice of masked rows after a row's first,
that would start past twice the limit stops the explanation with a 422 saying how far it got. The model here (onnx.helper) loops
as many times as its first feature's largest value in the batch: cheap on the background
(values near 0), so the estimate passes, and about a second a call for the rows explained.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_serve import start_serve

LIMIT = 0.1  # AIAAS_EXPLAIN_MAX_SECONDS
SLOW = 500_000.0  # loop trips a call: about a second (2 us each)


def _slow_on_large(path: Path) -> Path:
    """y = x0 + x1, after a Loop of max(x0) trips over the batch."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["v_in", "step"], ["v_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, []),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, []),
        ],
        [numpy_helper.from_array(np.array(0.0, np.float32), "step")],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["x", "zero"], ["first"], axis=1),
            helper.make_node("ReduceMax", ["first"], ["most"], keepdims=0),
            helper.make_node("Cast", ["most"], ["trips"], to=TensorProto.INT64),
            helper.make_node("Loop", ["trips", "", "v0"], ["v"], body=body),
            helper.make_node("ReduceSum", ["x", "one"], ["total"], keepdims=1),
            helper.make_node("Mul", ["v", "v0"], ["nothing"]),
            helper.make_node("Add", ["total", "nothing"], ["y"]),
        ],
        "slow-on-large",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        [
            numpy_helper.from_array(np.array(0, np.int64), "zero"),
            numpy_helper.from_array(np.array([1], np.int64), "one"),
            numpy_helper.from_array(np.array(0.0, np.float32), "v0"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("explain-deadline")
    store = LocalStore(root / "store")
    assert main(["--store", store.uri, "publish", str(_slow_on_large(root / "slow.onnx")), "--name", "slow"]) == 0  # fmt: skip
    rows = np.random.default_rng(0).normal(size=(30, 2))
    (root / "train.csv").write_text("x_0,x_1\n" + "\n".join(f"{a},{b}" for a, b in rows) + "\n")
    assert main(["--store", store.uri, "baseline", "slow", str(root / "train.csv")]) == 0
    env = {"AIAAS_EXPLAIN_MAX_SECONDS": str(LIMIT)}
    for server in start_serve(store.root, env=env):
        yield server.base


def test_an_explanation_past_twice_its_limit_is_stopped(base: str) -> None:
    rows = [[SLOW, 1.0], [SLOW, 2.0], [SLOW, 3.0]]
    began = time.monotonic()
    answer = httpx.post(f"{base}/models/slow/explain", json={"inputs": rows}, timeout=120)
    took = time.monotonic() - began
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert "this explanation was stopped after" in error, error
    assert f"2 times the {LIMIT:g} s limit (AIAAS_EXPLAIN_MAX_SECONDS)" in error, error
    assert "of 3 row(s) explained" in error and "send fewer rows" in error, error
    # Stopped at the second row, not run to the third (each row about a second here).
    assert took < 60, took
    quick = httpx.post(f"{base}/models/slow/explain", json={"inputs": [[1.0, 2.0]]}, timeout=60)
    assert quick.status_code == 200, quick.text  # the server stays up and answers
