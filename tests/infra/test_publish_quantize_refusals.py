"""`aiaas publish --quantize` refusals that say why: a file that is already int8 or fp16 (the
store's own variant published again), and models whose variant is no smaller because float32
weights stay float32 in it (a GRU's, and weights an Identity also reads, kept beside their int8
copies, as torch exports a TransformerEncoder of copied layers).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.neural_network import MLPRegressor

from bench.models import mlp_onnx
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_publish_quantize import publish, published, refused, stored_file
from tests.sklearn_models import export


def _weight(name: str, *shape: int) -> onnx.TensorProto:
    values = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    return numpy_helper.from_array(values, name)


def gru(path: Path, hidden: int = 96, features: int = 16) -> Path:
    """A GRU over [N, 8, F] rows (time major after a Transpose) and its last state: ~150 kB of
    weights that quantize_dynamic does not store in int8."""
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
        helper.make_node("GRU", ["t", "W", "R", "B"], ["", "h"], hidden_size=hidden),
        helper.make_node("Squeeze", ["h", "axis"], ["y"]),
    ]
    weights = [
        _weight("W", 1, 3 * hidden, features),
        _weight("R", 1, 3 * hidden, hidden),
        _weight("B", 1, 6 * hidden),
        numpy_helper.from_array(np.array([0], np.int64), "axis"),
    ]
    graph = helper.make_graph(
        nodes,
        "gru",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", hidden])],
        weights,
    )
    return onnx_factory.save(graph, path)


def shared(path: Path, side: int = 128) -> Path:
    """x @ W @ Identity(W), the Identity first as torch puts those of copied layers: the
    quantizer keeps the float32 W it already gave the Identity beside W's int8 copy."""
    nodes = [
        helper.make_node("Identity", ["W"], ["W2"]),
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("MatMul", ["h", "W2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "shared",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", side])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", side])],
        [_weight("W", side, side)],
    )
    return onnx_factory.save(graph, path)


@pytest.mark.parametrize("method", ["int8", "fp16"])
def test_an_already_quantized_file_is_refused_as_such(method: str, tmp_path: Path) -> None:
    # The store's own variant, downloaded and published again with either method: it got
    # "does not make this model smaller", onnxruntime's "DynamicQuantizeLinear ... float16 is
    # invalid", or "two nodes with same node name", where the docs promise "already quantized".
    store = LocalStore(tmp_path / "store")
    code, _, err = publish(store, mlp_onnx(tmp_path / "mlp.onnx"), "mlp", "--quantize", method)
    assert code == 0, err
    variant = stored_file(store, "mlp", tmp_path)
    what = "its graph has DynamicQuantizeLinear, MatMulInteger nodes"
    if method == "fp16":
        what = "its weights are float16"
    for again in ("int8", "fp16"):
        assert refused(tmp_path, variant, "--quantize", again) == (
            f"--quantize {again}: this file is already {method} ({what}); publish it without "
            "--quantize, or quantize its float32 original"
        )
    code, _, err = publish(store, variant, "as-is")  # without --quantize it is a model as any
    assert code == 0, err
    assert Registry(store).manifest("as-is", "1").file.sha256 != ""


def test_float_weights_left_are_named_with_the_ops_holding_them(tmp_path: Path) -> None:
    error = refused(tmp_path, gru(tmp_path / "gru.onnx"), "--quantize", "int8")
    assert error.startswith("--quantize int8 does not make this model smaller (")
    # W, R and B: 3 x 96 x (16 + 96) + 6 x 96 floats
    assert f"{(3 * 96 * 112 + 6 * 96) * 4:,} bytes of float32 weights stay float32" in error
    assert "read by GRU (" in error and "tree ensembles" not in error
    assert error.endswith("which the method does not store smaller; publish it without --quantize")

    error = refused(tmp_path, shared(tmp_path / "shared.onnx"), "--quantize", "int8")
    # W and the float32 scale of its int8 copy
    assert f"{128 * 128 * 4 + 4:,} bytes of float32 weights stay float32 in the variant" in error
    assert f"read by Identity ({128 * 128 * 4:,} bytes)" in error
    assert f"{128 * 128 * 4:,} of them are kept beside their int8 copies" in error
    # Too few weights to name: the reasons that do apply (here no weights at all).
    identity = onnx_factory.identity(tmp_path / "identity.onnx", elem=TensorProto.FLOAT)
    error = refused(tmp_path, identity, "--quantize", "int8")
    assert "too few float32 weight tensors" in error and "already quantized" not in error


def test_skl2onnx_repeated_opset_gets_the_reason_not_onnxruntime_words(tmp_path: Path) -> None:
    # skl2onnx 1.20 with its default options, but the one docs/registry.md names (no ZipMap), imports
    # ai.onnx twice; onnxruntime's quantizer said only "Failed to find proper ai.onnx domain".
    exported = export("logistic", tmp_path, zipmap=False)
    domains = [op.domain for op in onnx.load(str(exported.path)).opset_import]
    assert domains.count("") == 2  # as skl2onnx writes it: what this test is about
    before = exported.path.read_bytes()
    error = refused(tmp_path, exported.path, "--quantize", "int8")
    assert error.startswith("--quantize int8 does not make this model smaller (")
    assert "ai.onnx.ml operators" in error and "domain" not in error
    assert exported.path.read_bytes() == before  # the staged copy was deduplicated, not theirs


def test_skl2onnx_linear_regression_with_default_options_gets_the_reason(tmp_path: Path) -> None:
    # to_onnx(LinearRegression) with no options at all, as the README exports a regressor:
    # skl2onnx 1.20 imports ai.onnx twice here too (hunt_recent2 #7 repro, reg.onnx).
    x, y = load_diabetes(return_X_y=True)
    path = tmp_path / "linear.onnx"
    path.write_bytes(
        to_onnx(LinearRegression().fit(x, y), x[:1].astype(np.float32)).SerializeToString()
    )
    assert [op.domain for op in onnx.load(str(path)).opset_import].count("") == 2
    before = path.read_bytes()
    for method in ("int8", "fp16"):
        error = refused(tmp_path, path, "--quantize", method)
        assert error.startswith(f"--quantize {method} does not make this model smaller (")
        assert "ai.onnx.ml operators" in error and "domain" not in error
    assert path.read_bytes() == before


def test_a_repeated_opset_is_quantized_and_the_original_published_as_is(tmp_path: Path) -> None:
    # A graph int8 does make smaller, its ai.onnx opset imported twice as skl2onnx does.
    model = onnx.load(str(mlp_onnx(tmp_path / "mlp.onnx")))
    model.opset_import.append(helper.make_opsetid("", model.opset_import[0].version))
    twice = tmp_path / "twice.onnx"
    onnx.save(model, str(twice))
    store = LocalStore(tmp_path / "store")
    record = published(store, twice, "mlp", "--quantize", "int8")
    # The manifest names the user's file, byte for byte, as the variant's source.
    assert record["source"]["sha256"] == hashlib.sha256(twice.read_bytes()).hexdigest()
    variant = onnx.load(str(stored_file(store, "mlp", tmp_path)))
    assert any(node.op_type == "MatMulInteger" for node in variant.graph.node)


@pytest.mark.parametrize("method", ["fp16", "int8"])
def test_a_float32_model_with_one_float16_constant_is_quantized(
    method: str, tmp_path: Path
) -> None:
    # All weights float32 but a 1-element float16 constant Cast up (as an exporter may leave
    # one): the file is the float32 original, and was refused as "already fp16".
    model = onnx.load(str(mlp_onnx(tmp_path / "mlp.onnx")))
    graph = model.graph
    graph.initializer.append(numpy_helper.from_array(np.array([0.5], np.float16), "c16"))
    graph.node.append(helper.make_node("Cast", ["c16"], ["c32"], to=TensorProto.FLOAT))
    graph.node.append(helper.make_node("Add", [graph.output[0].name, "c32"], ["shifted"]))
    graph.output[0].name = "shifted"
    mixed = tmp_path / "mixed.onnx"
    onnx.save(model, str(mixed))
    store = LocalStore(tmp_path / "store")
    assert published(store, mixed, "mixed", "--quantize", method)["method"] == method
    # Its fp16 variant, whose weights are float16 (but for that constant, as before), is fp16.
    if method == "fp16":
        assert refused(tmp_path, stored_file(store, "mixed", tmp_path), "--quantize", "fp16") == (
            "--quantize fp16: this file is already fp16 (its weights are float16); publish it "
            "without --quantize, or quantize its float32 original"
        )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("method", ["int8", "fp16"])
def test_a_float64_model_is_told_its_weights_are_float64(method: str, tmp_path: Path) -> None:
    # skl2onnx's export of an MLP given float64 rows (`to_onnx(model, X[:1])` of a float64
    # array, or DoubleTensorType) keeps ~22 kB of float64 weights, which neither method
    # stores smaller: the refusal spoke of "too few float32 weight tensors" and "a model of
    # a few kB", and never said what to change (export it with float32 rows).
    x, y = load_diabetes(return_X_y=True)
    mlp = MLPRegressor(hidden_layer_sizes=(64, 32), max_iter=50, random_state=0).fit(x, y)
    path = tmp_path / "mlp64.onnx"
    path.write_bytes(to_onnx(mlp, x[:1].astype(np.float64)).SerializeToString())
    weights = (10 * 64 + 64 + 64 * 32 + 32 + 32 + 1) * 8
    error = refused(tmp_path, path, "--quantize", method)
    assert error.startswith(f"--quantize {method} does not make this model smaller (")
    assert f"{weights:,} bytes of its weights are float64 (double)" in error
    assert "too few float32 weight tensors" not in error and "a few kB" not in error
    assert "export it in float32" in error
