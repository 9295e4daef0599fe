"""`samples` too few to pin every attribution, on models whose true attributions are known.

A coalition and its complement give Kernel SHAP's constrained fit one equation between them, so
S coalitions fit at most S / 2 of a row's M - 1 unknowns. With S between M and 2M the normal
equations were singular and solved anyway: a 20-feature linear model explained with 30
coalitions answered -276 where the largest true attribution is 49, with a 200 and
`"exact": false` as its only sign. Now such a request is a 422 naming the fewest coalitions
that pin every attribution (2 a group), and at that many the attributions are the closed form
of each model: w_i (x_i - E_background[x_i]) for a linear regression's features and for a
linear image model's pixels (patch 1), and a bag-of-words text model's own weight for each
token (hidden by attention mask 0). Real parts: skl2onnx and onnx.helper models, `aiaas
publish` / `baseline` / `explain`, and a real `aiaas serve` over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression
from tokenizers import Tokenizer

from functions.runtime.explain.background import BACKGROUND_FILE
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from tests import hf_transformer
from tests.cli_run import run
from tests.infra.test_serve import start_serve

SIDE = 6  # a 6x6 grey image: 36 one-pixel patches
TEXT = "the app crashes when i open settings and my login never works please"  # 13 tokens


@dataclass(frozen=True)
class Built:
    store: LocalStore
    base: str  # the server's URL
    coef: dict[str, np.ndarray]  # model name -> its weights
    word_weights: np.ndarray  # the text model's weight per token id
    tokenizer: Path

    def background_mean(self, name: str) -> np.ndarray:
        """E[x] over the stored background, each row by its weight."""
        doc = json.loads(self.store.get_bytes(f"{version_prefix(name, '1')}/{BACKGROUND_FILE}"))
        rows, weights = np.array(doc["rows"]), np.array(doc["weights"])
        return np.asarray(weights @ rows / weights.sum())


def _linear(root: Path, store: LocalStore, name: str, width: int, rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """A skl2onnx LinearRegression of `width` features, published with a background."""
    x = rng.normal(size=(200, width)).astype(np.float32)
    estimator = LinearRegression().fit(x, x @ rng.normal(size=width) * 10)
    (root / f"{name}.onnx").write_bytes(to_onnx(estimator, x[:1]).SerializeToString())
    header = ",".join(f"X_{i}" for i in range(width))
    lines = [header, *(",".join(map(str, row)) for row in x.tolist())]
    (root / f"{name}.csv").write_text("\n".join(lines) + "\n")
    assert run(store, "publish", str(root / f"{name}.onnx"), "--name", name)[0] == 0
    code, _, err = run(store, "baseline", name, str(root / f"{name}.csv"))
    assert code == 0, err
    return np.asarray(estimator.coef_, dtype=np.float64)


def _image(root: Path, store: LocalStore, rng: np.random.Generator) -> np.ndarray:
    """A linear model of a [1, 6, 6] image (Flatten, MatMul), published with a background."""
    weights = rng.normal(size=(SIDE * SIDE, 1)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["x"], ["flat"]),
            helper.make_node("MatMul", ["flat", "W"], ["y"]),
        ],
        "linear-image",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, SIDE, SIDE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        [numpy_helper.from_array(weights, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, root / "image.onnx")
    np.save(root / "images.npy", rng.uniform(0, 1, (60, 1, SIDE, SIDE)).astype(np.float32))
    assert run(store, "publish", str(root / "image.onnx"), "--name", "image")[0] == 0
    code, _, err = run(store, "baseline", "image", str(root / "images.npy"))
    assert code == 0, err
    return weights[:, 0].astype(np.float64)


def _bag_of_words(root: Path, store: LocalStore, rng: np.random.Generator) -> tuple[np.ndarray, Path]:  # fmt: skip
    """y = the sum of each unmasked token's weight: a token's Shapley value is its weight."""
    tokenizer = hf_transformer.tokenizer_json(root / "tokenizer.json")
    weights = rng.normal(size=(len(hf_transformer.vocabulary()), 1)).astype(np.float32)
    weights[0] = 0.0  # [PAD]
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["N", "L"])
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["W", "input_ids"], ["each"]),
            helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["maskf", "two"], ["mask3"]),
            helper.make_node("Mul", ["each", "mask3"], ["kept"]),
            helper.make_node("ReduceSum", ["kept", "one"], ["y"], keepdims=0),
            helper.make_node("Identity", ["token_type_ids"], ["unread"]),
        ],
        "bag-of-words",
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        [
            numpy_helper.from_array(weights, "W"),
            numpy_helper.from_array(np.array([1], np.int64), "one"),
            numpy_helper.from_array(np.array([2], np.int64), "two"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, root / "bow.onnx")
    argv = ("--tokenizer", str(tokenizer), "--max-length", "40")
    code, _, err = run(store, "publish", str(root / "bow.onnx"), "--name", "bow", *argv)
    assert code == 0, err
    return weights[:, 0].astype(np.float64), tokenizer


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    root = tmp_path_factory.mktemp("few-samples")
    store = LocalStore(root / "store")
    rng = np.random.default_rng(5)
    coef = {name: _linear(root, store, name, width, rng) for name, width in (("lin20", 20), ("lin300", 300))}  # fmt: skip
    coef["image"] = _image(root, store, rng)
    words, tokenizer = _bag_of_words(root, store, rng)
    for server in start_serve(store.root):
        yield Built(store, server.base, coef, words, tokenizer)


def _closed_form(built: Built, name: str, x: np.ndarray) -> np.ndarray:
    return built.coef[name] * (x.reshape(-1) - built.background_mean(name))


def test_the_cli_refuses_too_few_samples_and_explains_exactly_at_the_fewest(built: Built) -> None:
    x = np.arange(20, dtype=np.float64) / 4 - 2
    argv = ("explain", "lin20", "--inputs", json.dumps([x.tolist()]))
    code, out, err = run(built.store, *argv, "--samples", "30")
    assert code == 1 and out == ""
    assert "samples 30 is too few for 20 features" in err and "at least 2 coalitions a feature (40 here)" in err  # fmt: skip
    code, out, err = run(built.store, *argv, "--samples", "40", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["parameters"]["samples"] == 40 and doc["parameters"]["exact"] is False
    assert "underdetermined_rows" not in doc["parameters"]
    got = np.array(doc["explanations"][0]["attributions"])[:, 0]
    want = _closed_form(built, "lin20", x)
    np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max())


def test_explain_file_refuses_too_few_samples_once(built: Built, tmp_path: Path) -> None:
    """Not an error line a row: the fewest coalitions are the model's, the same for each."""
    rows = tmp_path / "rows.csv"
    header = ",".join(f"X_{i}" for i in range(20))
    rows.write_text(header + "\n" + "\n".join(",".join(["1"] * 20) for _ in range(100)) + "\n")
    out = tmp_path / "why.jsonl"
    argv = ("explain", "lin20", "--file", str(rows), "--samples", "30", "--out", str(out))
    code, _, err = run(built.store, *argv)
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("aiaas explain: error: samples 30 is too few for 20 features"), err
    assert not out.exists()


def test_a_wide_model_over_http(built: Built) -> None:
    x = np.random.default_rng(1).normal(size=300) * 2
    body = {"instances": [x.tolist()]}
    for route in ("/models/lin300/explain", "/v2/models/lin300/explain"):
        if route.startswith("/v2"):
            body = {"inputs": [{"name": "X", "shape": [1, 300], "datatype": "FP32", "data": x.tolist()}]}  # fmt: skip
        few = httpx.post(built.base + route, json={**body, "parameters": {"samples": 400}}, timeout=60)  # fmt: skip
        assert few.status_code == 422, few.text
        assert "samples 400 is too few for 300 features" in few.json()["error"]
        assert "(600 here)" in few.json()["error"] and "default (2,648)" in few.json()["error"]
    answer = httpx.post(
        built.base + "/models/lin300/explain",
        json={"instances": [x.tolist()], "parameters": {"samples": 600}},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    got = np.array(answer.json()["explanations"][0]["attributions"])[:, 0]
    want = _closed_form(built, "lin300", x.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max())


def test_image_patches_over_http(built: Built) -> None:
    image = np.random.default_rng(2).uniform(0, 1, (1, SIDE, SIDE)).astype(np.float32)
    route = built.base + "/models/image/explain"
    few = httpx.post(route, json={"inputs": [image.tolist()], "parameters": {"samples": 40, "patch": 1}}, timeout=60)  # fmt: skip
    assert few.status_code == 422, few.text
    assert "samples 40 is too few for 36 patches" in few.json()["error"]
    assert "at least 2 coalitions a patch (72 here)" in few.json()["error"]
    answer = httpx.post(route, json={"inputs": [image.tolist()], "parameters": {"samples": 72, "patch": 1}}, timeout=60)  # fmt: skip
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["parameters"]["patch"] == 1 and doc["parameters"]["samples"] == 72
    assert "underdetermined_rows" not in doc["parameters"]
    got = np.array(doc["explanations"][0]["attributions"])[:, 0]
    want = _closed_form(built, "image", image.astype(np.float64))
    np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max())


def test_text_tokens_over_http(built: Built) -> None:
    ids = Tokenizer.from_file(str(built.tokenizer)).encode(TEXT)
    words = [i for i, special in zip(ids.ids, ids.special_tokens_mask, strict=True) if not special]
    assert len(words) == 13
    route = built.base + "/models/bow/explain"
    few = httpx.post(route, json={"inputs": [TEXT], "parameters": {"samples": 20}}, timeout=60)
    assert few.status_code == 422, few.text
    assert "samples 20 is too few for 13 tokens" in few.json()["error"]
    assert "(26 here)" in few.json()["error"]
    # At the fewest, this text's draw (seed 0, so always this one) leaves some tokens never
    # drawn apart: no unique fit, and the answer says so, row by row.
    answer = httpx.post(route, json={"inputs": [TEXT], "parameters": {"samples": 26}}, timeout=60)
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["parameters"]["underdetermined_rows"] == [0]
    assert doc["explanations"][0]["underdetermined"] is True
    got = np.array(doc["explanations"][0]["attributions"])[:, 0]
    want = built.word_weights[words]
    np.testing.assert_allclose(got.sum(), want.sum(), atol=1e-5)  # still adds up
    assert np.abs(got).max() <= 2 * np.abs(want).max()  # the least-norm fit: no blow-up
    # 3 a token: pinned, and each token's attribution is its own weight.
    answer = httpx.post(route, json={"inputs": [TEXT], "parameters": {"samples": 39}}, timeout=60)
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert "underdetermined_rows" not in doc["parameters"]
    assert "underdetermined" not in doc["explanations"][0]
    got = np.array(doc["explanations"][0]["attributions"])[:, 0]
    np.testing.assert_allclose(got, want, atol=1e-5)
