"""LoadedModel: a real onnxruntime session checked against its manifest, threads, predict."""

from __future__ import annotations

import dataclasses
from http import HTTPStatus
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from functions.runtime.errors import AiaasError, InvalidInput, ModelUnavailable
from functions.runtime.manifest import TensorSpec
from functions.runtime.model import (
    SMALL_MODEL_BYTES,
    LoadedModel,
    _session_runner,
    cpu_count,
    intra_op_threads,
    session_options,
)
from functions.runtime.settings import RuntimeSettings
from tests import onnx_factory
from tests.sklearn_models import Exported, export


def linear_model(
    tmp_path: Path, threads: int | None = None, max_batch: int | None = None, **changes: object
) -> LoadedModel:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx", seed=4, bias=0.5)
    manifest = onnx_factory.manifest_for(path, "m", "1", labels=("a", "b", "c"))
    manifest = dataclasses.replace(manifest, **changes)  # type: ignore[arg-type]
    return LoadedModel(manifest, path, threads=threads, max_batch_size=max_batch)


def expected_logits(path: Path, x: np.ndarray) -> np.ndarray:
    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    return np.asarray(x @ weights["W"] + weights["B"])


def test_predict_matches_the_graph(tmp_path: Path) -> None:
    model = linear_model(tmp_path)
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    out = model.predict({"x": x})
    assert list(out) == ["logits"] and out["logits"].shape == (5, 3)
    np.testing.assert_allclose(out["logits"], expected_logits(model.path, x), rtol=1e-5)
    assert model.ref == "m:1"
    assert list(model.predict({"x": x}, outputs=["logits"])) == ["logits"]


def test_unknown_output_is_invalid_input(tmp_path: Path) -> None:
    model = linear_model(tmp_path)
    with pytest.raises(InvalidInput) as caught:
        model.predict({"x": np.ones((1, 4), np.float32)}, outputs=["probs"])
    assert caught.value.status == HTTPStatus.UNPROCESSABLE_ENTITY
    assert caught.value.message == "unknown output 'probs'; this model has outputs ['logits']"


def test_small_models_run_on_one_thread_unless_configured(tmp_path: Path) -> None:
    assert linear_model(tmp_path).session.get_session_options().intra_op_num_threads == 1
    assert linear_model(tmp_path, threads=3).session.get_session_options().intra_op_num_threads == 3


def test_large_models_use_every_cpu() -> None:
    assert cpu_count() >= 1
    assert intra_op_threads(SMALL_MODEL_BYTES * 4) == cpu_count()
    assert intra_op_threads(None) == cpu_count()
    options = session_options(SMALL_MODEL_BYTES * 4)
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (cpu_count(), 1)
    assert intra_op_threads(SMALL_MODEL_BYTES * 4, configured=2) == 2


@pytest.mark.parametrize("bad", ["many", "-1", "1.5"])
def test_bad_thread_setting_is_a_clear_error(bad: str) -> None:
    with pytest.raises(AiaasError, match="AIAAS_ORT_THREADS must be"):
        RuntimeSettings.from_env({"AIAAS_ORT_THREADS": bad})


def test_batch_limit_from_settings_then_manifest(tmp_path: Path) -> None:
    assert RuntimeSettings.from_env({"AIAAS_MAX_BATCH": "8"}).max_batch == 8
    assert linear_model(tmp_path, max_batch=8).max_batch_size == 8
    model = linear_model(tmp_path, max_batch_size=2)
    assert model.max_batch_size == 2
    with pytest.raises(InvalidInput, match="batch of 3 rows; the limit is 2"):
        model.predict({"x": np.ones((3, 4), np.float32)})


def test_manifest_that_does_not_match_the_graph_is_unavailable(tmp_path: Path) -> None:
    wrong = (TensorSpec("pixels", "float32", (-1, 4)),)
    with pytest.raises(ModelUnavailable) as caught:
        linear_model(tmp_path, inputs=wrong)
    assert caught.value.status == HTTPStatus.SERVICE_UNAVAILABLE
    assert "manifest input pixels (float32) is not in the ONNX graph" in caught.value.message
    assert caught.value.public_message == "model m:1 does not match its manifest"
    wrong_dtype = (TensorSpec("logits", "float64", (-1, 3)),)
    with pytest.raises(ModelUnavailable, match="manifest output logits"):
        linear_model(tmp_path, outputs=wrong_dtype)


def test_file_that_is_not_onnx_is_unavailable(tmp_path: Path) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    manifest = onnx_factory.manifest_for(path, "m", "1")
    path.write_bytes(b"not a protobuf" * 4)
    with pytest.raises(ModelUnavailable) as caught:
        LoadedModel(manifest, path)
    # Refused by the walk for unlisted external data (which must read it) before onnxruntime
    assert "is not an ONNX model" in caught.value.message
    assert caught.value.public_message == "model m:1 cannot be loaded"


# ---- ZipMap outputs (skl2onnx's default export) ---------------------------------------------


def zipmap_model(tmp_path: Path, **changes: object) -> tuple[LoadedModel, Exported]:
    from functions.runtime.introspect import read_signature
    from functions.runtime.manifest import ModelManifest

    exported = export("forest", tmp_path, string_classes=True)
    sig = read_signature(exported.path)
    manifest = ModelManifest(
        name="wine", version="1", task="classification", inputs=sig.inputs,
        outputs=sig.outputs, file=sig.file,
    )  # fmt: skip
    return LoadedModel(dataclasses.replace(manifest, **changes), exported.path), exported  # type: ignore[arg-type]


def test_a_zipmap_output_is_served_as_a_float32_tensor(tmp_path: Path) -> None:
    model, exported = zipmap_model(tmp_path)
    out = model.predict({"X": exported.x_test}, typed=True)
    probabilities = out["output_probability"]
    assert probabilities.dtype == np.float32 and probabilities.shape == (len(exported.x_test), 3)
    proba = exported.estimator.predict_proba(exported.x_test)
    np.testing.assert_allclose(probabilities, proba, rtol=1e-4, atol=1e-5)
    assert out["output_label"].tolist() == exported.expected  # a string output, served as is
    only = model.predict({"X": exported.x_test[:1]}, typed=True, outputs=["output_probability"])
    assert list(only) == ["output_probability"] and only["output_probability"].shape == (1, 3)


def test_zipmap_columns_follow_the_manifest_keys(tmp_path: Path) -> None:
    model, exported = zipmap_model(tmp_path)
    spec = model.manifest.outputs[1]
    reversed_keys = dataclasses.replace(spec, map_keys=tuple(reversed(spec.map_keys)))
    flipped, _ = zipmap_model(tmp_path, outputs=(model.manifest.outputs[0], reversed_keys))
    x = {"X": exported.x_test}
    np.testing.assert_array_equal(
        flipped.predict(x)["output_probability"], model.predict(x)["output_probability"][:, ::-1]
    )


def test_zipmap_keys_of_the_wrong_kind_are_unavailable(tmp_path: Path) -> None:
    model, _ = zipmap_model(tmp_path)
    label, spec = model.manifest.outputs
    for wrong in (
        dataclasses.replace(spec, map_keys=(0, 1, 2)),  # int keys: the graph's are strings
        dataclasses.replace(spec, map_keys=()),  # a plain float32 tensor: the graph has maps
    ):
        with pytest.raises(ModelUnavailable, match="manifest output output_probability"):
            zipmap_model(tmp_path, outputs=(label, wrong))
    missing = dataclasses.replace(spec, map_keys=("class_0", "class_1", "class_9"))
    broken, exported = zipmap_model(tmp_path, outputs=(label, missing))
    with pytest.raises(AiaasError, match="output output_probability lacks class 'class_9'"):
        broken.predict({"X": exported.x_test[:2]})


def test_the_session_runs_without_its_python_wrapper_and_falls_back_to_it(
    tmp_path: Path,
) -> None:
    model = linear_model(tmp_path)
    x = np.random.default_rng(2).normal(size=(3, 4)).astype(np.float32)
    direct = model._session_run(["logits"], {"x": x}, None)[0]
    np.testing.assert_array_equal(direct, model.session.run(["logits"], {"x": x})[0])

    class WrapperOnly:  # an onnxruntime whose session keeps its C++ object elsewhere
        def __init__(self, session: object) -> None:
            self.run = session.run  # type: ignore[attr-defined]

    fallback = _session_runner(WrapperOnly(model.session))
    np.testing.assert_array_equal(fallback(["logits"], {"x": x}, None)[0], direct)
