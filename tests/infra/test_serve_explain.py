"""Explanations of a data scientist's own scikit-learn models, exported by skl2onnx with its
default options, published and given a background with the CLI (`aiaas publish`, `aiaas
baseline`), asked over real HTTP from a real `aiaas serve`: a request tritonclient builds as it
does by default (binary tensors), additivity for every output the answer reports, and a model
whose answer is known (it reads one feature only)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from skl2onnx import to_onnx
from sklearn.datasets import load_wine
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_serve import start_serve

ONE_FEATURE = ("f0", "f1", "f2", "f3", "f4")


@dataclass
class Served:
    base: str
    wine: np.ndarray  # rows of the wine model's training data


def _publish(store: LocalStore, path: Path, name: str, data: np.ndarray, *flags: str) -> None:
    """`aiaas publish` then `aiaas baseline` on a CSV of the training rows (x_0, ... when the
    model has no feature names, as skl2onnx leaves it)."""
    assert main(["--store", store.uri, "publish", str(path), "--name", name, *flags]) == 0
    names = flags[1].split(",") if flags else [f"x_{i}" for i in range(data.shape[1])]
    lines = [",".join(names)] + [",".join(map(str, row)) for row in data.tolist()]
    train = path.with_suffix(".csv")
    train.write_text("\n".join(lines) + "\n")
    assert main(["--store", store.uri, "baseline", name, str(train)]) == 0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("serve-explain")
    store = LocalStore(root / "store")
    x, y = load_wine(return_X_y=True)
    x = x.astype(np.float32)
    wine = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y)
    (root / "wine.onnx").write_bytes(to_onnx(wine, x[:1]).SerializeToString())  # ZipMap
    _publish(store, root / "wine.onnx", "wine", x)
    rng = np.random.default_rng(0)
    data = rng.normal(size=(500, 5)).astype(np.float32)
    one = LinearRegression().fit(data, 3 * data[:, 2])  # reads f2 only
    (root / "one.onnx").write_bytes(to_onnx(one, data[:1]).SerializeToString())
    _publish(store, root / "one.onnx", "one", data, "--features", ",".join(ONE_FEATURE))
    for server in start_serve(store.root):
        yield Served(server.base, x)


def _adds_up(attributions: np.ndarray, base: np.ndarray, prediction: np.ndarray) -> None:
    """Per row and per output: the attributions sum to the prediction less the base value."""
    np.testing.assert_allclose(attributions.sum(axis=1), prediction - base, atol=1e-5)


def test_tritonclients_default_binary_request_is_explained(served: Served) -> None:
    rows = served.wine[:3]
    tensor = triton.InferInput("X", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows)  # binary_data=True: tritonclient's default
    body, length = triton.InferenceServerClient.generate_request_body(
        [tensor], request_id="why-1", parameters={"samples": 500}
    )
    assert length is not None
    answer = httpx.post(
        f"{served.base}/v2/models/wine/explain",
        content=body,
        headers={
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(length),
        },
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["id"] == "why-1" and doc["parameters"]["samples"] == 500
    tensors = {t["name"]: np.reshape(t["data"], t["shape"]) for t in doc["outputs"]}
    assert tensors["attributions"].shape == (3, 13, 3)
    _adds_up(tensors["attributions"], tensors["base_value"], tensors["prediction"])
    # The same rows as JSON data give the same answer.
    json_body = {
        "inputs": [
            {"name": "X", "shape": [3, 13], "datatype": "FP32", "data": rows.ravel().tolist()}
        ],
        "parameters": {"samples": 500},
    }
    same = httpx.post(f"{served.base}/v2/models/wine/explain", json=json_body, timeout=60).json()
    np.testing.assert_allclose(same["outputs"][0]["data"], tensors["attributions"].ravel())


def test_a_zipmap_classifier_adds_up_for_every_class(served: Served) -> None:
    rows = served.wine[[0, 70, 150]]  # one of each class
    answer = httpx.post(
        f"{served.base}/models/wine/explain", json={"inputs": rows.tolist()}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["outputs"] == ["0", "1", "2"]
    assert [e["label"] for e in doc["explanations"]] == ["0", "1", "2"]
    for row in doc["explanations"]:
        _adds_up(
            np.asarray(row["attributions"])[None],
            np.asarray(row["base_value"])[None],
            np.asarray(row["prediction"])[None],
        )


def test_a_model_that_reads_one_feature_credits_that_feature_only(served: Served) -> None:
    record = {"f0": 1.0, "f1": -2.0, "f2": 1.5, "f3": 0.3, "f4": 2.0}
    answer = httpx.post(
        f"{served.base}/models/one/explain", json={"instances": [record]}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    (row,) = answer.json()["explanations"]
    values = np.asarray(row["attributions"])[:, 0]
    # 3 x (x2 - the background's mean of x2): the closed form of a linear model's Shapley values.
    assert abs(values[2] - (row["prediction"][0] - row["base_value"][0])) < 1e-4
    np.testing.assert_allclose(np.delete(values, 2), 0.0, atol=1e-4)


@pytest.mark.parametrize(
    ("route", "extra", "said"),
    [
        ("/models/one/explain", {"samples": 5000}, '{"parameters": {"samples": 5000}}'),
        ("/models/one/explain", {"nsamples": 64}, '{"parameters": {"samples": 64}}'),
        ("/v2/models/one/explain", {"samples": 5000}, '{"parameters": {"samples": 5000}}'),
    ],
)
def test_a_parameter_beside_the_inputs_is_refused_not_ignored(
    served: Served, route: str, extra: dict[str, int], said: str
) -> None:
    # `"samples": 5000` at the top of the body explained with the default samples, silently.
    row = [1.0, -2.0, 1.5, 0.3, 2.0]
    body = (
        {"inputs": [{"name": "X", "shape": [1, 5], "datatype": "FP32", "data": row}]}
        if route.startswith("/v2")
        else {"inputs": [row]}
    )
    answer = httpx.post(f"{served.base}{route}", json=body | extra, timeout=60)
    assert answer.status_code == 400
    key = next(iter(extra))
    assert answer.json()["error"] == (
        f'"{key}" is not read at the top of the body: give it under "parameters", like {said}'
    )
    assert httpx.post(f"{served.base}{route}", json=body, timeout=60).status_code == 200


@pytest.mark.parametrize(
    ("parameters", "on_input", "said"),
    [
        ({"nsamples": 64}, {}, "unknown explain parameter 'nsamples' (is it 'samples'?)"),
        ({"sample": 64}, {}, "unknown explain parameter 'sample' (is it 'samples'?)"),
        ({"patch_size": 2}, {}, "unknown explain parameter 'patch_size' (is it 'patch'?)"),
        ({}, {"samples": 64}, "input 'X' has parameters.samples, which nothing reads"),
    ],
)
def test_v2_refuses_an_explain_parameter_it_would_not_read(
    served: Served, parameters: dict[str, int], on_input: dict[str, int], said: str
) -> None:
    """OIP parameters carry the protocol's options too, so v2 read the explain ones and
    dropped the rest: `nsamples` (SHAP's name), a misspelling, or `samples` on the input
    tensor explained at the default budget with a 200."""
    tensor = {"name": "X", "shape": [1, 5], "datatype": "FP32", "data": [1.0, -2.0, 1.5, 0.3, 2.0]}
    body = {"inputs": [tensor | ({"parameters": on_input} if on_input else {})]}
    if parameters:
        body["parameters"] = parameters
    answer = httpx.post(f"{served.base}/v2/models/one/explain", json=body, timeout=60)
    assert answer.status_code == 400, answer.text
    assert said in answer.json()["error"]
    protocol = {"inputs": [tensor], "parameters": {"binary_data_output": False, "samples": 20}}
    answer = httpx.post(f"{served.base}/v2/models/one/explain", json=protocol, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["parameters"]["samples"] == 20


ROW = b"[0,0,0,0,0,0,0,0,0,0,0,0,0]"
OIP_X = b'{"name": "X", "shape": [1, 13], "datatype": "FP32", "data": ' + ROW + b"}"
BIG = b"100000000000000000000000"  # 10**23: orjson reads it as the float 1e+23


@pytest.mark.parametrize(
    ("route", "body", "status", "error"),
    [
        (
            "/v2/models/wine/infer",
            b'{"inputs": [{"name": "X", "shape": [1000000000000000000000000000000, 13], '
            b'"datatype": "FP32", "data": [0]}]}',
            422,
            "tensor 'X' declares a shape whose dimension 0 is over 67108864 (an integer "
            "beyond 64 bits)",
        ),
        (
            "/v2/models/wine/explain",
            b'{"inputs": [{"name": "X", "shape": [0, 18446744073709551616], '
            b'"datatype": "FP32", "data": []}]}',
            422,
            "tensor 'X' declares a shape whose dimension 1 is over 67108864 (an integer "
            "beyond 64 bits)",
        ),
        (
            "/models/wine/explain",
            b'{"inputs": [' + ROW + b'], "parameters": {"samples": ' + BIG + b"}}",
            422,
            "samples must be from 2 to 100000; got 100000000000000000000000",
        ),
        (
            "/v2/models/wine/explain",
            b'{"inputs": [' + OIP_X + b'], "parameters": {"samples": 18446744073709551616}}',
            422,
            "samples must be from 2 to 100000; got 18446744073709551616",
        ),
        (
            "/models/wine/explain",
            b'{"inputs": [' + ROW + b'], "samples": ' + BIG + b"}",
            400,
            '"samples" is not read at the top of the body: give it under "parameters", like '
            '{"parameters": {"samples": 100000000000000000000000}}',
        ),
        (
            "/v2/models/wine/infer",
            b'{"inputs": [' + OIP_X + b'], "parameters": {"binary_data_output": ' + BIG + b"}}",
            400,
            "request parameter 'binary_data_output' must be true or false; "
            "got 100000000000000000000000",
        ),
        (
            "/v2/models/wine/infer",
            b'{"inputs": [' + OIP_X + b'], "outputs": [{"name": "output_probability", '
            b'"parameters": {"classification": -' + BIG + b"}}]}",
            400,
            "output 'output_probability' parameter 'classification' (class_count) must be an integer of at "
            "least 1: the number of best classes to answer a row; got -" + BIG.decode(),
        ),
    ],
    ids=[
        "shape-oip-infer",
        "shape-oip-explain",
        "samples",
        "samples-oip",
        "samples-misplaced",
        "binary-flag",
        "class-count",
    ],
)
def test_an_integer_beyond_64_bits_is_said_to_be_too_large(
    served: Served, route: str, body: bytes, status: int, error: str
) -> None:
    """orjson reads such an integer as a float: it was a 400 saying the shape "needs a list of
    non-negative integers" (it was one) or that samples "must be an integer"; a refusal that
    quotes the value quotes the integer sent (they said 1e+23, which no caller wrote)."""
    answer = httpx.post(
        served.base + route, content=body, headers={"Content-Type": "application/json"}
    )
    assert (answer.status_code, answer.json()["error"]) == (status, error), answer.text


def _class_count(served: Served, count: bytes) -> httpx.Response:
    """The wine classifier's OIP infer asking `count` (as written) best classes."""
    body = (
        b'{"inputs": [' + OIP_X + b'], "outputs": [{"name": "output_probability", '
        b'"parameters": {"classification": ' + count + b"}}]}"
    )
    return httpx.post(
        served.base + "/v2/models/wine/infer",
        content=body,
        headers={"Content-Type": "application/json"},
    )


def test_a_class_count_beyond_64_bits_answers_every_class(served: Served) -> None:
    # 10**23 reached class_count as orjson's float and was refused as "not an integer of at
    # least 1"; it is one, and asks for every class as 5 of a 3-class model does.
    answer = _class_count(served, BIG)
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    assert (output["datatype"], output["shape"]) == ("BYTES", [1, 3])


@pytest.mark.parametrize("count", [b"1e19", b"1.5e300", b"18446744073709551616.5"])
def test_a_class_count_written_as_a_float_is_refused_however_large(
    served: Served, count: bytes
) -> None:
    # Read as orjson's float like 10**23's digits, these were taken as "every class", while
    # 1e2 and 2.0 are refused: a float the caller wrote is no count.
    answer = _class_count(served, count)
    assert answer.status_code == 400, answer.text
    assert "(class_count) must be an integer of at least 1" in answer.json()["error"]
