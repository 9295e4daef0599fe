"""An image classifier exported without a batch axis ([3, H, W] -> [5]): publish with --labels
said its output "has one score per row but the model has 5 classes", where the output is the
five scores of one image. It now says so, and how to export with a batch axis."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import EXIT_ERROR, run


def unbatched(path: Path) -> Path:
    """y [5] = the mean of each channel of x [3, 9, 7] @ W [3, 5]."""
    weights = np.arange(15, dtype=np.float32).reshape(3, 5) / 10
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["x"], ["m"], axes=[1, 2], keepdims=0),
            helper.make_node("MatMul", ["m", "w"], ["y"]),
        ],
        "unbatched",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 9, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5])],
        initializer=[numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def test_labels_for_an_unbatched_classifier_say_to_export_a_batch_axis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    path = unbatched(tmp_path / "nobatch.onnx")
    argv = ["--store", store.uri, "publish", str(path), "--name", "nobatch", "--no-progress"]
    assert run([*argv, "--labels", "a,b,c,d,e"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "output 'y' is [5]: the 5 class scores of one input with no batch axis" in err, err
    assert "x.unsqueeze(0)" in err and "one score per row" not in err
    assert not Registry(store).models()


def window_model(path: Path, rows: int | str) -> Path:
    """logits [2] = the mean over the steps of x [rows, 12] @ W [12, 2]: a binary classifier of
    one window [steps, 12] where `rows` is "steps" (torch.onnx.export of a GRU on one window);
    of a batch fixed at 2 where it is 2 (one logit per row: `fc(x).squeeze(-1)`)."""
    weights = np.linspace(-1, 1, 24, dtype=np.float32).reshape(12, 2)
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], axes=[0], keepdims=0),
        helper.make_node("MatMul", ["m", "w"], ["logits"]),
    ]
    if rows == 2:
        weights = weights[:, :1]
        nodes = [
            helper.make_node("MatMul", ["x", "w"], ["z"]),
            helper.make_node("Squeeze", ["z", "axis"], ["logits"]),
        ]
    graph = helper.make_graph(
        nodes,
        "window",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, 12])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [2])],
        initializer=[
            numpy_helper.from_array(weights, "w"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def test_a_binary_classifier_of_one_window_is_refused_not_served_two_predictions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A GRU exported on one window ([steps, 12] -> logits [2]) and published with two labels
    was read as one sigmoid score a row: a window was answered two predictions, both "ok",
    where its softmax says "fault". Publish now refuses it, saying to export a batch axis."""
    store = LocalStore(tmp_path / "store")
    path = window_model(tmp_path / "window.onnx", "steps")
    argv = ["--store", store.uri, "publish", str(path), "--name", "pump", "--no-progress"]
    assert run([*argv, "--labels", "ok,fault"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "output 'logits' is [2]: the 2 class scores of one input with no batch axis" in err
    assert "x.unsqueeze(0)" in err
    assert not Registry(store).models()
    assert run([*argv, "--task", "other"]) == 0  # its raw logits are served as they are


def test_one_logit_a_row_of_a_batch_fixed_at_two_still_publishes(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    path = window_model(tmp_path / "pair.onnx", 2)
    argv = ["--store", store.uri, "publish", str(path), "--name", "pair", "--no-progress"]
    assert run([*argv, "--labels", "ok,fault"]) == 0
    manifest = Registry(store).manifest("pair", "1")
    assert manifest.postprocessing is not None
    assert manifest.postprocessing.activation == "sigmoid"


def test_a_window_of_exactly_two_steps_is_refused_as_one_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A GRU exported on one window of 2 steps ([2, 12] -> logits [2]) has the shapes of a
    batch fixed at 2 answering one logit a row: it was published and one window was answered
    two predictions. Swapping its two rows does not swap its answers (a batch's would), so
    publish refuses it as it refuses one window of any other length."""
    model = onnx.load(window_model(tmp_path / "two.onnx", "steps"))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    onnx.save(model, tmp_path / "two.onnx")
    window = np.random.default_rng(0).normal(size=(2, 12)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "two.onnx"))
    logits = session.run(None, {"x": window})[0]
    assert np.allclose(session.run(None, {"x": window[::-1].copy()})[0], logits)  # not swapped
    store = LocalStore(tmp_path / "store")
    argv = ["--store", store.uri, "publish", str(tmp_path / "two.onnx"), "--name", "pump"]
    assert run([*argv, "--no-progress", "--labels", "ok,fault"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "output 'logits' is [2]: the 2 class scores of one input with no batch axis" in err
    assert not Registry(store).models()


def test_a_window_of_two_steps_published_before_is_not_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version an older release published (no swap probe) is a 503, not two predictions for
    one window; a true batch fixed at 2 is served its two rows' answers."""
    from functions.predict.service import service_from_env
    from functions.runtime.cache import ArtifactCache
    from functions.runtime.pool import ModelPool
    from infra.cli import publish_classifier
    from tests.functions.test_predict_events import body_of, http_event

    model = onnx.load(window_model(tmp_path / "two.onnx", "steps"))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    onnx.save(model, tmp_path / "two.onnx")
    window_model(tmp_path / "pair.onnx", 2)
    store = LocalStore(tmp_path / "store")
    monkeypatch.setattr(publish_classifier, "_one_score_for_many", lambda *a, **k: None)
    for name in ("two", "pair"):
        argv = ["--store", store.uri, "publish", str(tmp_path / f"{name}.onnx"), "--name", name]
        assert run([*argv, "--no-progress", "--labels", "ok,fault"]) == 0
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    body = json.dumps({"inputs": np.random.default_rng(0).normal(size=(2, 12)).tolist()})
    answered = {}
    for name in ("two", "pair"):
        service = service_from_env({"AIAAS_MODEL": name}, pool)
        answered[name] = service.handle(http_event("POST", f"/models/{name}/predict", body))
    assert answered["two"]["statusCode"] == 503, answered["two"]
    assert (
        "answers the 2 class scores of one input with no batch axis"
        in (body_of(answered["two"])["error"])
    )
    assert answered["pair"]["statusCode"] == 200, answered["pair"]
    assert len(body_of(answered["pair"])["predictions"]) == 2


def test_such_a_version_published_before_is_not_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version an older release published (its publish let it through) is a 503 naming the
    fix, not two sigmoid predictions for one window."""
    from functions.predict.service import service_from_env
    from functions.runtime.cache import ArtifactCache
    from functions.runtime.pool import ModelPool
    from infra.cli import publish_classifier
    from tests.functions.test_predict_events import body_of, http_event

    store = LocalStore(tmp_path / "store")
    path = window_model(tmp_path / "window.onnx", "steps")
    monkeypatch.setattr(publish_classifier, "_one_score_for_many", lambda *a, **k: None)
    argv = ["--store", store.uri, "publish", str(path), "--name", "pump", "--no-progress"]
    assert run([*argv, "--labels", "ok,fault"]) == 0
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "pump"}, pool)
    window = np.random.default_rng(0).normal(size=(50, 12)).tolist()
    body = json.dumps({"inputs": window})
    response = service.handle(http_event("POST", "/models/pump/predict", body))
    assert response["statusCode"] == 503, response
    error = body_of(response)["error"]
    assert "answers the 2 class scores of one input with no batch axis" in error, error
    assert "x.unsqueeze(0)" in error


def with_hidden_state(path: Path) -> Path:
    """`window_model` of one window [steps, 12] beside a two-layer GRU's initial state h0 [2, 8]
    (torch's unbatched h0 is [layers, hidden]): a batch fixed at 2 is every input's, not one's."""
    model = onnx.load(window_model(path, "steps"))
    model.graph.input.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, [2, 8]))
    model.graph.node[-1].output[0] = "z"
    model.graph.node.extend(
        [
            helper.make_node("ReduceSum", ["h0"], ["h"], keepdims=0),
            helper.make_node("Add", ["z", "h"], ["logits"]),
        ]
    )
    onnx.save(model, path)
    return path


def test_an_input_fixed_at_two_beside_a_window_does_not_let_its_scores_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window [steps, 12] with h0 [2, 8] answering logits [2] was published (h0's first axis
    read as a batch fixed at 2) and one window was answered two predictions, where
    onnxruntime's logits are one window's two class scores. Publish refuses it; a version
    published before is a 503."""
    from functions.predict.service import service_from_env
    from functions.runtime.cache import ArtifactCache
    from functions.runtime.pool import ModelPool
    from infra.cli import publish_classifier
    from tests.functions.test_predict_events import body_of, http_event

    store = LocalStore(tmp_path / "store")
    path = with_hidden_state(tmp_path / "gru.onnx")
    window = np.random.default_rng(0).normal(size=(50, 12)).astype(np.float32)
    feeds = {"x": window, "h0": np.zeros((2, 8), np.float32)}
    assert ort.InferenceSession(str(path)).run(None, feeds)[0].shape == (2,)  # one window's
    argv = ["--store", store.uri, "publish", str(path), "--name", "pump", "--no-progress"]
    assert run([*argv, "--labels", "ok,fault"]) == EXIT_ERROR
    assert "the 2 class scores of one input with no batch axis" in capsys.readouterr().err
    assert not Registry(store).models()

    monkeypatch.setattr(publish_classifier, "_one_score_for_many", lambda *a, **k: None)
    assert run([*argv, "--labels", "ok,fault"]) == 0
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "pump"}, pool)
    body = json.dumps({"inputs": {"x": window.tolist(), "h0": feeds["h0"].tolist()}})
    response = service.handle(http_event("POST", "/models/pump/predict", body))
    assert response["statusCode"] == 503, response
    assert "one input with no batch axis" in body_of(response)["error"]
