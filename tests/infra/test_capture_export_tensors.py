"""`aiaas capture export` of image and multi-input models, through the real CLI: requests
captured by the real predict handler (API Gateway v2 events, directory store), exported, then
scored again by the real `aiaas batch`.

The JSONL export writes such a model's rows by input name, each input whole (`{"x": [[...]]}`,
`{"a": [...], "b": [...]}`), as batch JSONL reads them: flat `x_0`... keys were read back as
"missing input 'x'", and an image of dynamic size kept 3 of its values (the positive dims of
[N, 3, H, W]). A CSV cannot hold rows of dynamic size (batch CSV refuses such a model): that
export is refused, pointing at JSONL; a fixed-size image still exports to columns batch reads."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.predict.capture import CaptureTap
from functions.predict.service import PredictService
from functions.predict.telemetry import RequestMetrics
from functions.runtime.cache import ArtifactCache
from functions.runtime.capture.buffer import CaptureBuffer
from functions.runtime.capture.setting import set_capture
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.served import ServedModel
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.functions.test_predict_events import http_event
from tests.infra.test_capture_export_cells import Clock

LABELS = ("cat", "dog")
RNG = np.random.default_rng(7)
# Images of several sizes (channels first), sent in every form the routes take.
IMAGES = [RNG.normal(size=(3, h, w)).round(4).tolist() for h, w in [(5, 7), (4, 4), (4, 4), (6, 2)]]
PIXELS = [RNG.integers(0, 256, size=(8, 8, 3)).tolist() for _ in range(3)]  # channels last
PAIRS = [([1.5, -2.0], [0.25, 3.0]), ([0.0, 1.0], [-1.0, 2.0]), ([4.0, 0.5], [2.0, -3.5])]


def _save(nodes: list[Any], name: str, inputs: list[Any], weights: Any, path: Path) -> Path:
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])
    w = numpy_helper.from_array(np.asarray(weights, dtype=np.float32), "W")
    graph = helper.make_graph(nodes, name, inputs, [logits], initializer=[w])
    return onnx_factory.save(graph, path)


def image_model(path: Path) -> Path:
    """float32 [N, 3, H, W], H and W dynamic: average per channel, then a matmul."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"], axis=1),
        helper.make_node("MatMul", ["f", "W"], ["logits"]),
    ]
    return _save(nodes, "img", [x], [[1.0, -1.0], [-2.0, 0.5], [0.5, 2.0]], path)


def pixels_model(path: Path) -> Path:
    """uint8 [N, 8, 8, 3], channels last: mean per channel, then a matmul."""
    x = helper.make_tensor_value_info("x", TensorProto.UINT8, ["N", 8, 8, 3])
    nodes = [
        helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["xf"], ["m"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["m", "W"], ["logits"]),
    ]
    return _save(nodes, "nhwc", [x], [[0.02, -0.01], [-0.03, 0.01], [0.01, 0.02]], path)


def two_inputs_model(path: Path) -> Path:
    """float32 a [N, 2] and b [N, 2]: concatenated, then a matmul."""
    a, b = (helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 2]) for n in "ab")
    nodes = [
        helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
        helper.make_node("MatMul", ["c", "W"], ["logits"]),
    ]
    return _save(nodes, "multi", [a, b], [[1, -1], [0.5, 2], [-1.5, 1], [2, 0.25]], path)


def served(registry: Registry, root: Path, model: str, sent: list[tuple[str, Any]]) -> list[str]:
    """Send each (route, body) to `model`'s real predict handler with capture on; the label
    served for each row, in order (an OIP answer's: its logits' best class)."""
    set_capture(registry, model, sample=1.0, actor="test")
    pool = ModelPool(registry, ArtifactCache(registry.store, root / f"cache-{model}"))
    service = PredictService(
        ServedModel(pool, model, ttl=3600), metrics=RequestMetrics(out=io.StringIO())
    )
    clock = Clock()
    buffer = CaptureBuffer(registry.store, clock=clock.monotonic, wall=clock.wall)
    service.capture = CaptureTap(service.served, buffer, clock=clock.monotonic, wall=clock.wall)
    service.warm()
    labels = []
    for route, body in sent:
        path = f"/v2/models/{model}/infer" if route == "infer" else f"/models/{model}/predict"
        response = service.handle(http_event("POST", path, json.dumps(body)))
        assert response["statusCode"] == 200, response["body"]
        answer = json.loads(response["body"])
        if route == "infer":
            logits = np.reshape(answer["outputs"][0]["data"], answer["outputs"][0]["shape"])
            labels += [LABELS[i] for i in logits.argmax(axis=1)]
        else:
            labels += [p["label"] for p in answer["predictions"]]
    service.capture.flush()
    return labels


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    """The store, and the labels served to each model's captured rows."""
    root = tmp_path_factory.mktemp("capture-tensors")
    registry = Registry(LocalStore(root / "store"))
    for name, build in [("img", image_model), ("nhwc", pixels_model), ("multi", two_inputs_model)]:
        path = build(root / f"{name}.onnx")
        registry.publish(onnx_factory.manifest_for(path, name, "1", labels=LABELS), path)
    oip = {"name": "x", "shape": [1, 3, 6, 2], "datatype": "FP32"}
    labels = {
        "img": served(registry, root, "img", [
            ("predict", {"inputs": [IMAGES[0]]}),
            ("predict", {"instances": IMAGES[1:3]}),  # two images in one request
            ("predict", {"inputs": {"x": IMAGES[0]}}),  # one image without its batch axis
            ("predict", {"instances": [{"x": IMAGES[1]}]}),  # a record by input name
            ("infer", {"inputs": [{**oip, "data": np.ravel(IMAGES[3]).tolist()}]}),
        ]),
        "nhwc": served(registry, root, "nhwc", [
            ("predict", {"inputs": PIXELS[:2]}), ("predict", {"inputs": PIXELS[2]}),
        ]),
        "multi": served(registry, root, "multi", [
            ("predict", {"inputs": {"a": [p[0] for p in PAIRS[:2]], "b": [p[1] for p in PAIRS[:2]]}}),
            ("predict", {"instances": [{"a": PAIRS[2][0], "b": PAIRS[2][1]}]}),
        ]),
    }  # fmt: skip
    return root, labels


def aiaas(root: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--store", str(root / "store"), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def exported(root: Path, capsys: pytest.CaptureFixture[str], model: str, name: str) -> Path:
    out = root / name
    code, said, err = aiaas(root, capsys, "capture", "export", model, "--out", str(out))
    assert code == 0, err
    assert said.startswith(f"{len(_rows(out))} rows of {model} written")
    return out


def _rows(out: Path) -> list[dict[str, Any]]:
    if out.suffix == ".jsonl":
        return [json.loads(line) for line in out.read_text().splitlines()]
    with out.open(newline="") as handle:
        return list(csv.DictReader(handle))


def rescored(root: Path, capsys: pytest.CaptureFixture[str], model: str, out: Path) -> list[Any]:
    """The rows of `aiaas batch MODEL out`'s output file, every row scored."""
    code, said, err = aiaas(root, capsys, "batch", model, str(out))
    assert code == 0, said + err
    key = next(x for x in said.splitlines() if x.startswith("output:")).split()[1]
    scored = _rows(root / "store" / key.removeprefix(f"{root / 'store'}/"))
    assert len(scored) == len(_rows(out)) and "could not be scored" not in said, said
    return scored


def test_images_of_any_size_export_whole_and_score_back_to_the_labels_served(
    store: tuple[Path, dict[str, list[str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, labels = store
    rows = _rows(exported(root, capsys, "img", "img.jsonl"))
    sent = [IMAGES[0], IMAGES[1], IMAGES[2], IMAGES[0], IMAGES[1], IMAGES[3]]
    assert [row["x"] for row in rows] == sent  # every value, nested as sent (105 of 105)
    assert not any(key.startswith("x_") for row in rows for key in row)
    assert [row["served_label"] for row in rows] == labels["img"]
    scored = rescored(root, capsys, "img", root / "img.jsonl")
    assert [row["pred_label"] for row in scored] == labels["img"]
    assert [row["pred_score"] for row in scored] == pytest.approx(
        [row["served_score"] for row in rows], rel=1e-6
    )


def test_a_csv_export_of_images_of_dynamic_size_is_refused_for_jsonl(
    store: tuple[Path, dict[str, list[str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    """No fixed columns hold an image of any size, and batch CSV refuses the model: the CSV
    export wrote x_0, x_1, x_2 (3 of each image's values), said nothing, and could not be
    scored. Now it is refused, saying what to run, and writes no file."""
    root, _ = store
    out = root / "img.csv"
    code, _, err = aiaas(root, capsys, "capture", "export", "img", "--out", str(out))
    assert code == 1 and not out.exists(), err
    assert "input 'x' of shape [-1, 3, -1, -1]: dimension(s) 2, 3 are dynamic" in err
    assert "aiaas capture export img --out img.jsonl" in err


def test_a_fixed_size_uint8_image_exports_to_jsonl_and_csv_that_batch_scores(
    store: tuple[Path, dict[str, list[str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, labels = store
    rows = _rows(exported(root, capsys, "nhwc", "nhwc.jsonl"))
    assert [row["x"] for row in rows] == PIXELS  # 8x8x3 integers each, as sent
    scored = rescored(root, capsys, "nhwc", root / "nhwc.jsonl")
    assert [row["pred_label"] for row in scored] == labels["nhwc"]
    # A fixed row shape still has CSV columns (x_0 ... x_191, row-major), as batch CSV reads.
    rows = _rows(exported(root, capsys, "nhwc", "nhwc.csv"))
    assert [[int(row[f"x_{i}"]) for i in range(192)] for row in rows] == [
        np.ravel(p).tolist() for p in PIXELS
    ]
    scored = rescored(root, capsys, "nhwc", root / "nhwc.csv")
    assert [row["pred_label"] for row in scored] == labels["nhwc"]


def test_a_two_input_model_exports_each_input_by_name(
    store: tuple[Path, dict[str, list[str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, labels = store
    rows = _rows(exported(root, capsys, "multi", "multi.jsonl"))
    assert [(row["a"], row["b"]) for row in rows] == [tuple(p) for p in PAIRS]
    scored = rescored(root, capsys, "multi", root / "multi.jsonl")
    assert [row["pred_label"] for row in scored] == labels["multi"]
    # The CSV keeps its columns a_0, a_1, b_0, b_1, as batch CSV reads them.
    out = exported(root, capsys, "multi", "multi.csv")
    assert [[row[c] for c in ("a_0", "a_1", "b_0", "b_1")] for row in _rows(out)] == [
        [str(v) for v in a + b] for a, b in PAIRS
    ]
    assert [row["pred_label"] for row in rescored(root, capsys, "multi", out)] == labels["multi"]
