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
import json
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
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
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
    return store


@pytest.fixture(scope="module")
def base(store: LocalStore) -> Iterator[str]:
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


@pytest.mark.parametrize("name", ["hash", "hashc"])
@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".npy"])
def test_explain_file_explains_the_integers_predict_scored(
    base: str, store: LocalStore, tmp_path: Path, name: str, suffix: str
) -> None:
    """`aiaas explain --file` read a CSV's (a JSONL's, an .npy's) cells as float64: h =
    1234567890123456789 was explained as ...768 while predict, over HTTP, scored ...789."""
    if suffix == ".npy" and name == "hashc":
        pytest.skip("an .npy holds no string column")
    records = [{"h": h, "a": 0.5} | ({"c": "blue"} if name == "hashc" else {}) for h in IDS]
    path = tmp_path / f"rows{suffix}"
    if suffix == ".csv":
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        np.save(path, np.array([[h, 0] for h in IDS], dtype=np.int64))
        records = [{"h": h, "a": 0.0} for h in IDS]
    predicted = httpx.post(f"{base}/models/{name}/predict", json={"instances": records}, timeout=60)  # fmt: skip
    assert predicted.status_code == 200, predicted.text
    want = [y for (y,) in predicted.json()["outputs"]["y"]]
    shift = 0.0 if suffix == ".npy" else 0.5
    assert want[0] == 789 + shift + (
        COLOURS["blue"] if name == "hashc" else 0.0
    )  # predict's, exact
    out = tmp_path / "explained.jsonl"
    argv = ["--store", store.uri, "explain", name, "--file", str(path), "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["row"] for line in lines] == list(range(len(IDS)))
    got = [line["prediction"][0] for line in lines]
    assert got == pytest.approx(want, abs=1e-3), (got, want)
    for line in lines:  # the masked rows kept the integer too
        total = sum(a[0] for a in line["attributions"])
        assert total == pytest.approx(line["prediction"][0] - line["base_value"][0], abs=1e-3)
