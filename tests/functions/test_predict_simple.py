"""The simple JSON route, `POST /models/{name}/predict`: every accepted form, top_k, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_events import (
    MODEL,
    body_of,
    digits_service,
    http_event,
    publish_digits,
    reference_logits,
)

PATH = f"/models/{MODEL}/predict"
ROWS = np.arange(3 * 64, dtype=np.float32).reshape(3, 64) % 17


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return publish_digits(tmp_path_factory.mktemp("simple"))[1]


@pytest.fixture(scope="module")
def service(onnx_path: Path) -> PredictService:
    service = digits_service(onnx_path.parent)
    service.warm()
    return service


def predict(service: PredictService, doc: Any, **query: str) -> tuple[int, Any]:
    body = doc if isinstance(doc, str) else json.dumps(doc)
    response = service.handle(http_event("POST", PATH, body, query=query or None))
    return response["statusCode"], body_of(response)


def softmax(row: np.ndarray) -> np.ndarray:
    exps = np.exp(row.astype(np.float64) - row.max())
    return exps / exps.sum()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "doc",
    [
        {"inputs": ROWS.tolist()},
        {"inputs": {"x": ROWS.tolist()}},
        {"instances": ROWS.tolist()},
        {"instances": [{"x": row} for row in ROWS.tolist()]},
    ],
    ids=["inputs-rows", "inputs-named", "instances-rows", "instances-objects"],
)
def test_every_body_form_gives_the_models_logits(
    service: PredictService, onnx_path: Path, doc: dict[str, Any]
) -> None:
    status, body = predict(service, doc)
    assert status == 200, body
    assert (body["model"], body["version"]) == (MODEL, "1")
    expected = reference_logits(onnx_path, ROWS)
    np.testing.assert_allclose(body["outputs"]["logits"], expected, rtol=1e-5, atol=1e-6)
    labels = [p["label"] for p in body["predictions"]]
    assert labels == [str(i) for i in expected.argmax(axis=1)]
    for prediction, row in zip(body["predictions"], expected, strict=True):
        assert prediction["score"] == pytest.approx(softmax(row).max(), rel=1e-6)
        assert "top_k" not in prediction


def test_one_row_without_its_batch_axis(service: PredictService, onnx_path: Path) -> None:
    status, body = predict(service, {"inputs": ROWS[0].tolist()})
    assert status == 200
    expected = reference_logits(onnx_path, ROWS[:1])
    np.testing.assert_allclose(body["outputs"]["logits"], expected, rtol=1e-5, atol=1e-6)


def test_integer_json_values_are_taken_by_a_float_model(service: PredictService) -> None:
    status, body = predict(service, {"inputs": [[int(v) for v in ROWS[0]]]})
    assert status == 200
    assert np.shape(body["outputs"]["logits"]) == (1, 10)


def test_top_k_ranks_every_class_by_softmax_score(service: PredictService, onnx_path: Path) -> None:
    status, body = predict(service, {"inputs": ROWS[:1].tolist()}, top_k="3")
    assert status == 200
    probs = softmax(reference_logits(onnx_path, ROWS[:1])[0])
    ranked = np.argsort(-probs)[:3]
    (prediction,) = body["predictions"]
    assert [t["label"] for t in prediction["top_k"]] == [str(i) for i in ranked]
    assert [t["score"] for t in prediction["top_k"]] == pytest.approx(probs[ranked], rel=1e-6)
    assert (prediction["label"], prediction["score"]) == (
        prediction["top_k"][0]["label"],
        prediction["top_k"][0]["score"],
    )
    assert math.fsum(softmax(np.asarray(body["outputs"]["logits"][0]))) == pytest.approx(1.0)


def test_top_k_above_the_class_count_lists_every_class(service: PredictService) -> None:
    status, body = predict(service, {"inputs": ROWS[:1].tolist()}, top_k="1000")
    assert status == 200
    assert sorted(t["label"] for t in body["predictions"][0]["top_k"]) == [
        str(i) for i in range(10)
    ]


def test_a_top_k_in_the_body_is_refused_naming_the_query_parameter(
    service: PredictService,
) -> None:
    # `{"inputs": ..., "top_k": 3}` answered one label, the body's top_k ignored without a word.
    status, body = predict(service, {"inputs": ROWS[:1].tolist(), "top_k": 3})
    assert (status, body) == (
        400,
        {"error": "top_k is a query parameter, not read from the body: POST .../predict?top_k=3"},
    )


@pytest.mark.parametrize(
    ("field", "error"),
    [
        ("topK", "'topK': top_k is a query parameter, not read from the body: POST "),
        ("top-k", "'top-k': top_k is a query parameter, not read from the body: POST "),
        ("output", "'output' is not read by this route, which answers every output: name "),
    ],
)
def test_a_body_key_asking_an_option_is_refused_by_name(
    service: PredictService, field: str, error: str
) -> None:
    """`{"inputs": ..., "topK": 3}` (a misspelled or misplaced option) was answered as if the
    option had not been sent: one label, every output, no word of it."""
    status, body = predict(service, {"inputs": ROWS[:1].tolist(), field: 3})
    assert status == 400 and body["error"].startswith(error), body


def test_the_caller_s_own_keys_beside_the_inputs_pass(service: PredictService) -> None:
    """An id or notes beside the inputs are the caller's (captured, unless denied)."""
    extra = {"request_id": "r-7", "notes": "private", "topic": "x", "k": 1, "top": 2, "tok": 3}
    status, body = predict(service, {"instances": ROWS[:1].tolist(), **extra})
    assert status == 200 and len(body["predictions"]) == 1


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"signature_name": "serving_default"}, None),  # every TF-Serving REST client's
        ({"parameters": {}}, None),  # Vertex AI's body, nothing asked
        ({"signature_name": "serving_default", "parameters": {}}, None),
        (
            {"signatureName": "serving_default"},
            "'signatureName': TF-Serving's key is signature_name (or drop it)",
        ),
        (
            {"signature_name": "classify"},
            "'signature_name' 'classify': a model here has one signature, \"serving_default\" "
            "(TF-Serving's default); drop signature_name or send that",
        ),
        (
            {"parameters": {"threshold": 0.7}},
            "'parameters': predict reads no parameters (explain does): drop them; predict "
            'takes "inputs" or "instances", and ?top_k in the query',
        ),
    ],
    ids=["signature", "empty-parameters", "both", "misspelled", "other-signature", "parameters"],
)
def test_tf_serving_and_vertex_bodies_are_taken_when_they_ask_nothing(
    service: PredictService, extra: dict[str, Any], error: str | None
) -> None:
    """TF-Serving's clients send `"signature_name": "serving_default"` with every request, and
    Vertex AI sends `"parameters"`: refused as unknown keys, such clients stopped working."""
    status, body = predict(service, {"instances": ROWS[:1].tolist(), **extra})
    if error is None:
        assert status == 200 and len(body["predictions"]) == 1, body
    else:
        assert (status, body) == (400, {"error": error})


@pytest.mark.parametrize("top_k", ["0", "-1", "abc", "1001", "2.5", "", "²", "٣"])
def test_bad_top_k_is_400(service: PredictService, top_k: str) -> None:
    status, body = predict(service, {"inputs": ROWS[:1].tolist()}, top_k=top_k)
    assert (status, body) == (
        400,
        {"error": f"top_k must be an integer from 1 to 1000; got {top_k!r}"},
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "request body is not valid JSON"),
        ("", "request body is not valid JSON"),
        ('{"inputs": [NaN]}', "request body is not valid JSON"),
        ("[1, 2, 3]", 'request body must be a JSON object like {"inputs": [[...]]}'),
        ("{}", 'request body needs exactly one of "inputs" or "instances"'),
        (
            '{"inputs": [[1]], "instances": [[1]]}',
            'request body needs exactly one of "inputs" or "instances"',
        ),
        ('{"instances": []}', '"instances" must be a non-empty list of rows'),
        ('{"instances": 3}', '"instances" must be a non-empty list of rows'),
    ],
    ids=["syntax", "empty", "nan", "array", "neither", "both", "no-rows", "rows-not-list"],
)
def test_malformed_body_is_400(service: PredictService, raw: str, message: str) -> None:
    status, body = predict(service, raw)
    assert status == 400
    assert body["error"].startswith(message), body


def test_a_body_not_utf8_says_so_and_where(service: PredictService) -> None:
    # A Latin-1 client's "café": orjson's message named surrogates at line 1, column 1.
    event = http_event(
        "POST", PATH, b'{"inputs": ["caf\xe9"]}', b64=True
    )  # as API Gateway sends it
    response = service.handle(event)
    assert response["statusCode"] == 400
    assert body_of(response) == {
        "error": "request body is not UTF-8 text (byte 17 is 0xe9); JSON is sent as UTF-8"
    }


def test_nan_from_pythons_json_says_why_it_is_refused(service: PredictService) -> None:
    # requests / httpx `json=` bodies go through json.dumps, which writes NaN and -Infinity
    # bare; the parser's message alone gives only a character position.
    rows = ROWS[:1].tolist()
    rows[0][3], rows[0][5] = math.nan, -math.inf
    status, body = predict(service, {"inputs": rows})
    assert status == 400
    assert body["error"].startswith("request body is not valid JSON: "), body
    assert body["error"].endswith(
        "(NaN and Infinity are not JSON: send null for a missing value, as pandas' to_json "
        "writes it, which an input that takes missing values reads as NaN (one its graph "
        "imputes, as aiaas show says, or of a model published with --allow-nonfinite); OIP "
        "binary tensors carry infinities)"
    ), body
    status, body = predict(service, '{"inputs": [["NaN", "Infinity"]')  # text, cut short
    assert status == 400 and "NaN and Infinity" not in body["error"], body


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"inputs": [[1.0] * 63]},
            "input 'x' expects shape [-1, 64]; got [1, 63] (dimension 1 must be 64)",
        ),
        (
            {"inputs": [[[1.0] * 64]]},
            "input 'x' expects shape [-1, 64] (rank 2); got shape [1, 1, 64]",
        ),
        (
            {"inputs": [["a"] * 64]},
            "input 'x' value [0, 0] must be a number (float32); got 'a'",
        ),
        ({"inputs": [[True] * 64]}, "input 'x' expects float32; got true/false values"),
        (  # numpy reads a true among numbers as 1.0: it was served as one
            {"inputs": [[1.0] * 63 + [True]]},
            "input 'x' expects float32 numbers; got true/false among them",
        ),
        (
            {"inputs": [[1.0] * 64, [1.0] * 63]},
            "input 'x' is ragged: every row must have shape [64]",
        ),
        (
            {"inputs": [[1.0] * 63 + [None]]},
            "input 'x' at index [0, 63] is a missing value (null); this model takes finite "
            "numbers only: fill it in, or publish a model whose graph takes them (`aiaas publish` "
            "reads an XGBoost or LightGBM export's trees and a SimpleImputer as "
            "taking them; `--allow-nonfinite` for another graph, but not skl2onnx's "
            "scikit-learn forests, which send every missing value one way)",
        ),
        (
            {"inputs": []},
            "input 'x' has an empty batch; send at least one row",  # not a row of width 0
        ),
        (
            {"inputs": {"x": [[1.0] * 64], "y": [1]}},
            "unknown input 'y'; this model takes x: float32 [-1, 64]",
        ),
        (
            {"inputs": {"z": [[1.0] * 64]}},
            "missing input 'x' (x: float32 [-1, 64]); got 'z', which this model does not take",
        ),
        (
            {"instances": [{"y": [1.0] * 64}]},
            "instances[0] has unknown input 'y'; this model takes x: float32 [-1, 64] and has no "
            "feature names (it was published without --features): send rows of values, or "
            "publish a version with --features naming these fields",
        ),
        ({"instances": [{"x": [1.0] * 64}, {}]}, "instances[1] is missing input 'x'"),
        (
            {"inputs": [[1e39] * 64]},  # finite as sent: out of float32's range, not "not finite"
            "input 'x' has 1e+39 at index [0, 0], out of float32's range (±3.4e+38)",
        ),
    ],
    ids=[
        "width",
        "rank",
        "text",
        "bool",
        "bool-among-numbers",
        "ragged",
        "null",
        "empty",
        "unknown",
        "missing",
        "instances-unknown",
        "instances-missing",
        "overflow",
    ],
)
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_shape_or_dtype_mismatch_is_422_naming_the_input(
    service: PredictService, doc: dict[str, Any], message: str
) -> None:
    assert predict(service, doc) == (422, {"error": message})


def test_batch_over_the_limit_is_422(onnx_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIAAS_MAX_BATCH", "2")
    service = digits_service(onnx_path.parent)
    status, body = predict(service, {"inputs": ROWS.tolist()})
    assert (status, body) == (422, {"error": "input 'x' has a batch of 3 rows; the limit is 2"})


def test_instances_of_objects_mixed_with_rows_is_400(service: PredictService) -> None:
    status, body = predict(service, {"instances": [{"x": [1.0] * 64}, [1.0] * 64]})
    assert (status, body) == (
        400,
        {"error": "instances[1] must be an object of input name -> value"},
    )


def test_top_k_on_a_model_without_classes_is_400(tmp_path: Path) -> None:
    path = onnx_factory.identity(tmp_path / "plain.onnx")  # no labels: outputs as they are
    store = LocalStore(tmp_path / "store")
    Registry(store).publish(onnx_factory.manifest_for(path, "plain", "1"), path)
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "plain"}, pool)
    body = '{"inputs": [[1, 2, 3]]}'
    answer = service.handle(http_event("POST", "/models/plain/predict", body, query={"top_k": "2"}))
    assert (answer["statusCode"], body_of(answer)) == (
        400,
        {
            "error": "top_k ranks a classifier's labels; plain:1 has no class scores "
            "(its outputs come as they are)"
        },
    )
    answer = service.handle(http_event("POST", "/models/plain/predict", body))  # no top_k
    assert (answer["statusCode"], body_of(answer)["outputs"]) == (200, {"y": [[1.0, 2.0, 3.0]]})
