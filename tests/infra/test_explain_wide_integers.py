"""An int64 input past 2^53 (an id, a 64-bit hash bucketed in the graph) beside float inputs:
explained as the value predict scored, not float64's rounding of it.

Explanations carry a mixed model's rows as one float64 array, which holds every integer only
up to 2^53: `{"h": 1234567890123456789, "a": 0}` was explained as h = ...768, `"prediction":
[768.0]` where predict answered 789. Such a row is now carried in a wider float where the
platform has one (x86-64 and arm64 Linux), the masked rows too, and each input gets its own
type back exactly. Two onnx.helper models, published and given a background by the CLI,
asked over HTTP of a real `aiaas serve`: y = (h mod 1000) + a, and the same plus a string
column's code (an ai.onnx.ml LabelEncoder), whose rows are an object array.
"""

from __future__ import annotations

import csv
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

IDS = (1234567890123456789, 9007199254740993, -9007199254740995, 2**63 - 1)
COLOURS = {"red": 10.0, "green": 20.0, "blue": 30.0}


def _model(path: Path, colour: bool) -> Path:
    """y = float(h mod 1000) + a (+ the colour's code)."""
    nodes = [
        helper.make_node("Mod", ["h", "k"], ["m"]),
        helper.make_node("Cast", ["m"], ["mf"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["mf", "a"], ["ya" if colour else "y"]),
    ]
    inputs = [
        helper.make_tensor_value_info("h", TensorProto.INT64, ["N", 1]),
        helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 1]),
    ]
    opsets = [helper.make_opsetid("", 17)]
    if colour:
        nodes += [
            helper.make_node(
                "LabelEncoder", ["c"], ["code"], domain="ai.onnx.ml",
                keys_strings=list(COLOURS), values_floats=list(COLOURS.values()),
                default_float=0.0,
            ),
            helper.make_node("Add", ["ya", "code"], ["y"]),
        ]  # fmt: skip
        inputs.append(helper.make_tensor_value_info("c", TensorProto.STRING, ["N", 1]))
        opsets.append(helper.make_opsetid("ai.onnx.ml", 2))
    graph = helper.make_graph(
        nodes,
        "wide-integers",
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        [numpy_helper.from_array(np.array([1000], np.int64), "k")],
    )
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("wide-integers")
    store = LocalStore(root / "store")
    rng = np.random.default_rng(0)
    with (root / "train.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["h", "a", "c"])
        for _ in range(50):
            writer.writerow([int(rng.integers(0, 10**6)), float(rng.normal()), rng.choice(list(COLOURS))])  # fmt: skip
    for name, colour in (("hash", False), ("hashc", True)):
        model = _model(root / f"{name}.onnx", colour)
        assert main(["--store", store.uri, "publish", str(model), "--name", name]) == 0
        assert main(["--store", store.uri, "baseline", name, str(root / "train.csv")]) == 0
    for server in start_serve(store.root):
        yield server.base


@pytest.mark.parametrize("name", ["hash", "hashc"])
@pytest.mark.parametrize("h", IDS)
def test_the_explanation_is_of_the_integer_predict_scored(base: str, name: str, h: int) -> None:
    record = {"h": h, "a": 0.5} | ({"c": "blue"} if name == "hashc" else {})
    # ONNX's integer Mod takes the divisor's sign, as Python's % does
    want = h % 1000 + 0.5 + (COLOURS["blue"] if name == "hashc" else 0.0)
    predicted = httpx.post(f"{base}/models/{name}/predict", json={"instances": [record]}, timeout=60)  # fmt: skip
    assert predicted.status_code == 200, predicted.text
    assert predicted.json()["outputs"]["y"] == [[want]]
    explained = httpx.post(f"{base}/models/{name}/explain", json={"instances": [record]}, timeout=60)  # fmt: skip
    assert explained.status_code == 200, explained.text
    doc = explained.json()
    (row,) = doc["explanations"]
    assert row["prediction"] == [pytest.approx(want, abs=1e-3)], (row, predicted.json())
    # the masked rows kept it too: the attributions add up to this prediction
    assert sum(a[0] for a in row["attributions"]) == pytest.approx(want - row["base_value"][0], abs=1e-3)  # fmt: skip
