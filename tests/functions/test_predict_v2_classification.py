"""Triton's classification extension in the predict function: real API Gateway v2 events into
the Lambda handler, for skl2onnx classifiers published by `aiaas publish` with default options
(ZipMap) and without the ZipMap, and for a network's logits (digits-mlp).

Also home of `publish_classifiers` and `parse_classes`, which the `aiaas serve` + tritonclient
tests share (tests/infra/test_serve_classification.py).
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from infra.local.functions import load_handler
from tests import onnx_factory
from tests.functions.test_predict_events import MODEL as DIGITS
from tests.functions.test_predict_events import http_event, publish_digits, reference_logits
from tests.sklearn_models import CLASS_NAMES, Exported, export

ZIPMAP, TENSOR = "wine", "wine-tensor"
ROWS = 6


def publish_classifiers(root: Path) -> dict[str, Exported]:
    """digits-mlp (logits), `wine` (StandardScaler + LogisticRegression, skl2onnx defaults: a ZipMap, classes 0, 1, 2) and
    `wine-tensor` (zipmap False, classes class_0, ...), the last two with `aiaas publish`."""
    store, _ = publish_digits(root)
    models = {
        ZIPMAP: export("pipeline", root),  # scaled: fits in milliseconds, not seconds
        TENSOR: export("forest", root, zipmap=False, string_classes=True),
    }
    for name, model in models.items():
        assert main(["--store", str(store), "publish", str(model.path), "--name", name]) == 0
    return models


def parse_classes(element: str | bytes) -> tuple[float, int, str]:
    """(score, index, label) of one "score:index:label" element."""
    text = element.decode() if isinstance(element, bytes) else element
    score, index, label = text.split(":", 2)
    return float(score), int(index), label


def expected_classes(model: Exported, count: int) -> list[list[tuple[float, int, str]]]:
    """What Triton answers for scikit-learn's own probabilities: each row's best `count`."""
    proba = model.estimator.predict_proba(model.x_test[:ROWS])
    order = np.argsort(-proba, axis=1, kind="stable")[:, :count]
    return [
        [(round(float(p[i]), 6), int(i), model.classes[i]) for i in row]
        for p, row in zip(proba, order, strict=True)
    ]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("classification")


@pytest.fixture(scope="module")
def models(root: Path) -> dict[str, Exported]:
    return publish_classifiers(root)


@pytest.fixture(scope="module")
def handlers(root: Path, models: dict[str, Exported]) -> dict[str, Callable[..., Any]]:
    """One predict function per model, as template.yaml deploys them."""
    store = root / "store"
    return {
        name: load_handler(
            "functions.predict.handler.handler",
            {"AIAAS_MODEL": name, "AIAAS_STORE": str(store), "AIAAS_CACHE_DIR": str(root / "c")},
        )
        for name in (ZIPMAP, TENSOR, DIGITS)
    }


def infer(
    handler: Callable[..., Any], model: str, rows: np.ndarray, outputs: list[dict[str, Any]]
) -> tuple[int, dict[str, Any]]:
    """An OIP JSON request through a v2 event; (status, body)."""
    doc = {
        "inputs": [
            {
                "name": "X" if model != DIGITS else "x",
                "shape": list(rows.shape),
                "datatype": "FP32",
                "data": rows.ravel().tolist(),
            }
        ],
        "outputs": outputs,
    }
    path = f"/v2/models/{model}/infer"
    response = handler(http_event("POST", path, json.dumps(doc)), None)
    return response["statusCode"], orjson.loads(response["body"])


def classified(name: str, count: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "parameters": {"classification": count, **extra}}


@pytest.mark.parametrize(
    ("model", "output"), [(ZIPMAP, "output_probability"), (TENSOR, "probabilities")]
)
def test_json_answers_triton_class_strings(
    handlers: dict[str, Callable[..., Any]], models: dict[str, Exported], model: str, output: str
) -> None:
    exported = models[model]
    status, body = infer(handlers[model], model, exported.x_test[:ROWS], [classified(output, 2)])
    assert status == 200, body
    (item,) = body["outputs"]
    assert (item["name"], item["datatype"], item["shape"]) == (output, "BYTES", [ROWS, 2])
    got = np.reshape([parse_classes(e) for e in item["data"]], (ROWS, 2, 3)).tolist()
    want = expected_classes(exported, 2)
    assert [[(int(i), lab) for _, i, lab in row] for row in got] == [
        [(i, lab) for _, i, lab in row] for row in want
    ]
    np.testing.assert_allclose(
        [[float(s) for s, _, _ in row] for row in got],
        [[s for s, _, _ in row] for row in want],
        atol=2e-6,
    )
    assert [row[0][2] for row in want] == exported.expected[:ROWS]  # the best is predict's
    assert all(len(e.split(":")[0].split(".")[1]) == 6 for e in item["data"])  # "%f"


def test_string_labels_come_from_the_manifest(
    handlers: dict[str, Callable[..., Any]], models: dict[str, Exported]
) -> None:
    rows = models[TENSOR].x_test[:1]
    _, body = infer(handlers[TENSOR], TENSOR, rows, [classified("probabilities", 3)])
    labels = sorted(parse_classes(e)[2] for e in body["outputs"][0]["data"])
    assert labels == list(CLASS_NAMES)


def test_logits_rank_as_probabilities(root: Path, handlers: dict[str, Callable[..., Any]]) -> None:
    # Triton would print the logit; the order is the same, the score the one /predict reports.
    rows = np.linspace(-2, 2, 3 * 64, dtype=np.float32).reshape(3, 64)
    status, body = infer(handlers[DIGITS], DIGITS, rows, [classified("logits", 3)])
    assert status == 200, body
    logits = reference_logits(root / "mlp.onnx", rows).astype(np.float64)
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    best = np.argsort(-logits, axis=1, kind="stable")[:, :3]
    got = np.reshape([parse_classes(e) for e in body["outputs"][0]["data"]], (3, 3, 3))
    assert got[:, :, 1].astype(int).tolist() == best.tolist()
    assert got[:, :, 2].tolist() == best.astype(str).tolist()
    np.testing.assert_allclose(
        got[:, :, 0].astype(float), np.take_along_axis(proba, best, axis=1), atol=1e-6
    )


def test_a_model_without_class_scores_is_a_400(root: Path) -> None:
    path = onnx_factory.two_outputs(root / "plain.onnx")
    Registry(LocalStore(root / "store")).publish(
        onnx_factory.manifest_for(path, "plain", "1"), path
    )
    handler = load_handler(
        "functions.predict.handler.handler",
        {
            "AIAAS_MODEL": "plain",
            "AIAAS_STORE": str(root / "store"),
            "AIAAS_CACHE_DIR": str(root / "c"),
        },
    )
    doc = {
        "inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}],
        "outputs": [classified("a", 1)],
    }
    response = handler(http_event("POST", "/v2/models/plain/infer", json.dumps(doc)), None)
    assert (response["statusCode"], orjson.loads(response["body"])) == (
        400,
        {
            "error": (
                "output 'a' asks for the classification extension (class_count), which ranks a "
                "classifier's class scores; model plain:1 (task 'other') has none: request the output "
                "without class_count"
            )
        },
    )


def test_binary_event_answers_length_prefixed_strings(
    handlers: dict[str, Callable[..., Any]], models: dict[str, Exported]
) -> None:
    rows = models[ZIPMAP].x_test[:ROWS]
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "X",
                    "shape": [ROWS, 13],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": rows.nbytes},
                }
            ],
            "outputs": [
                classified("output_probability", 3, binary_data=True),
                {"name": "output_label", "parameters": {"binary_data": False}},
            ],
        }
    ).encode()
    event = http_event(
        "POST",
        f"/v2/models/{ZIPMAP}/infer",
        head + rows.astype("<f4").tobytes(),
        headers={
            "content-type": "application/octet-stream",
            "inference-header-content-length": str(len(head)),
        },
        b64=True,
    )
    response = handlers[ZIPMAP](event, None)
    assert response["statusCode"] == 200, response["body"]
    raw = base64.b64decode(response["body"]) if response["isBase64Encoded"] else response["body"]
    length = int(response["headers"]["inference-header-content-length"])
    header = json.loads(raw[:length])
    classes, label = header["outputs"]
    assert (classes["datatype"], classes["shape"]) == ("BYTES", [ROWS, 3])
    assert classes["parameters"]["binary_data_size"] == len(raw) - length
    elements, offset = [], length
    while offset < len(raw):
        (size,) = struct.unpack_from("<I", raw, offset)
        elements.append(raw[offset + 4 : offset + 4 + size].decode())
        offset += 4 + size
    got = [parse_classes(e) for e in elements]
    want = [c for row in expected_classes(models[ZIPMAP], 3) for c in row]
    assert [(i, lab) for _, i, lab in got] == [(i, lab) for _, i, lab in want]
    assert (label["datatype"], [str(v) for v in label["data"]]) == (
        "INT64",
        models[ZIPMAP].expected[:ROWS],
    )


def test_a_count_over_the_classes_answers_every_class(
    handlers: dict[str, Callable[..., Any]], models: dict[str, Exported]
) -> None:
    # Triton answers min(count, classes) a row; the shape says so (tritonclient reshapes by it).
    rows = models[ZIPMAP].x_test[:2]
    status, body = infer(handlers[ZIPMAP], ZIPMAP, rows, [classified("output_probability", 50)])
    assert status == 200, body
    assert body["outputs"][0]["shape"] == [2, 3] and len(body["outputs"][0]["data"]) == 6


@pytest.mark.parametrize("count", [0, -1, 2.5, 3.0, "3", True, [2], {"n": 2}])
def test_a_count_that_is_no_positive_integer_is_a_400(
    handlers: dict[str, Callable[..., Any]], models: dict[str, Exported], count: Any
) -> None:
    rows = models[ZIPMAP].x_test[:1]
    status, body = infer(handlers[ZIPMAP], ZIPMAP, rows, [classified("output_probability", count)])
    assert status == 400
    assert body["error"].startswith(
        "output 'output_probability' parameter 'classification' (class_count) must be an "
        "integer of at least 1"
    ), body


def test_a_label_output_is_a_400_naming_the_scores(
    handlers: dict[str, Callable[..., Any]], models: dict[str, Exported]
) -> None:
    rows = models[ZIPMAP].x_test[:1]
    status, body = infer(handlers[ZIPMAP], ZIPMAP, rows, [classified("output_label", 2)])
    assert (status, body) == (
        400,
        {
            "error": (
                "output 'output_label' holds no class scores to rank (classification extension, "
                f"class_count); model {ZIPMAP}:1 has them in output 'output_probability': ask "
                "class_count of that one"
            )
        },
    )


def test_an_unknown_output_is_still_the_unknown_output_answer(
    handlers: dict[str, Callable[..., Any]], models: dict[str, Exported]
) -> None:
    rows = models[ZIPMAP].x_test[:1]
    status, body = infer(handlers[ZIPMAP], ZIPMAP, rows, [classified("nope", 2)])
    assert status == 422 and "unknown output 'nope'" in body["error"], body
