"""A sensor window [N, T, F] (a GRU's or a 1-D CNN's input: T steps of F features, F a few)
is explained in runs of steps of ONE feature, not cut into square patches as a greyscale
image: a [12, 3] window's 3 x 3 "pixel" patches held features 0-2 together, so an answer could
not say which sensor moved the prediction (hunt_journey9 1). A model of any length ([N, -1,
F]) leaves a run out by giving it its feature's own mean over the window, not one mean of
every sensor. Linear models (onnx.helper) whose exact Shapley values are known in closed form,
published and baselined with the CLI, explained through the predict function's real handler
(an API Gateway event), and drawn by `aiaas explain --png` and the card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.drift.baseline import BASELINE_FILE, build
from functions.runtime.drift.images import image_feature_names, image_features
from functions.runtime.explain.patches import features_axis
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import LocalStore
from infra.cli.explain_plot import attribution_map
from infra.cli.main import main
from tests.functions.test_predict_events import body_of, http_event
from training.card import importance_plot

STEPS, FEATURES = 12, 3
WEIGHTS = np.array([0.0, 2.0, 0.0], np.float32)  # only sensor 1 matters


def _linear(path: Path, steps: int) -> Path:
    """y = sum over steps and features of x[t, f] * WEIGHTS[f]: [N, steps, 3] -> [N, 1]."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", steps, FEATURES])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1])
    weights = helper.make_tensor("w", TensorProto.FLOAT, [FEATURES, 1], WEIGHTS.tolist())
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("ReduceSum", ["x", "axes"], ["summed"], keepdims=0),
        helper.make_node("MatMul", ["summed", "w"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "window", [x], [y], [weights, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sensor-windows")
    store = LocalStore(root / "store").uri
    train = np.random.default_rng(0).normal(size=(40, STEPS, FEATURES)).astype(np.float32)
    np.save(root / "train.npy", train)
    for name, steps in (("fixed", STEPS), ("anylength", "t")):
        path = _linear(root / f"{name}.onnx", steps)  # type: ignore[arg-type]
        assert main(["--store", store, "publish", str(path), "--name", name]) == 0
        assert main(["--store", store, "baseline", name, str(root / "train.npy")]) == 0
    return root


def _explain(root: Path, model: str, window: np.ndarray, **parameters: int) -> dict:
    store = LocalStore(root / "store")
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    service: PredictService = service_from_env({"AIAAS_MODEL": model}, pool)
    body = json.dumps({"inputs": [window.tolist()], "parameters": parameters})
    response = service.handle(http_event("POST", f"/models/{model}/explain", body))
    doc = body_of(response)
    assert response["statusCode"] == 200, doc
    return doc


def _by_group(doc: dict) -> dict[str, float]:
    values = np.asarray(doc["explanations"][0]["attributions"]).reshape(-1)
    return dict(zip(doc["features"], values.tolist(), strict=True))


def test_a_fixed_window_is_explained_in_runs_of_one_feature(root: Path) -> None:
    window = np.random.default_rng(1).normal(size=(STEPS, FEATURES)).astype(np.float32)
    doc = _explain(root, "fixed", window, patch=4)
    assert doc["features"] == [f"patch_r{t}_c{f}" for t in (0, 4, 8) for f in range(FEATURES)]
    assert doc["parameters"]["patch_shape"] == [4, 1]
    got = _by_group(doc)
    background = np.load(root / "train.npy").mean(axis=0)  # k-means centres weigh to it
    for t in (0, 4, 8):
        for f in range(FEATURES):
            rows = slice(t, t + 4)
            want = WEIGHTS[f] * float((window[rows, f] - background[rows, f]).sum())
            assert got[f"patch_r{t}_c{f}"] == pytest.approx(want, abs=0.05 + 0.05 * abs(want))
    # Sensors 0 and 2 weigh nothing: their runs get nothing, whatever sensor 1 does.
    assert all(abs(got[f"patch_r{t}_c{f}"]) < 1e-5 for t in (0, 4, 8) for f in (0, 2))


def test_the_default_patch_keeps_every_run_to_one_feature(root: Path) -> None:
    window = np.ones((STEPS, FEATURES), np.float32)
    doc = _explain(root, "fixed", window)
    columns = {int(name.rsplit("_c", 1)[1]) for name in doc["features"]}
    assert columns == set(range(FEATURES))  # a run a feature (a square patch: column 0 alone)
    rows, width = doc["parameters"]["patch_shape"]
    assert width == 1
    assert len(doc["features"]) == FEATURES * -(-STEPS // rows) <= 32


def test_a_window_of_any_length_is_occluded_with_each_features_own_mean(root: Path) -> None:
    rng = np.random.default_rng(2)
    # Sensors of their own units: 0 around 100, 1 around 0, 2 around -50.
    window = (rng.normal(size=(9, FEATURES)) + np.array([100.0, 0.0, -50.0])).astype(np.float32)
    doc = _explain(root, "anylength", window, patch=3)
    # Exact: the base value is the window with each sensor at its own mean (it was every
    # sensor at their common mean, 16.7: sensor 1 read at 17, a value it never takes).
    means = window.mean(axis=0)
    base = float((9 * means * WEIGHTS).sum())
    assert doc["explanations"][0]["base_value"][0] == pytest.approx(base, abs=1e-3)
    assert doc["parameters"]["patch_shape"] == [3, 1]
    assert "mean per feature" in doc["parameters"]["background"]
    got = _by_group(doc)
    for t in (0, 3, 6):
        want = WEIGHTS[1] * float((window[t : t + 3, 1] - means[1]).sum())
        assert got[f"patch_r{t}_c1"] == pytest.approx(want, abs=1e-3)
        assert abs(got[f"patch_r{t}_c0"]) < 1e-3 and abs(got[f"patch_r{t}_c2"]) < 1e-3


def test_the_png_and_the_card_draw_each_run_in_its_own_cell(root: Path, tmp_path: Path) -> None:
    window = np.random.default_rng(3).normal(size=(STEPS, FEATURES)).astype(np.float32)
    doc = _explain(root, "fixed", window, patch=4)
    heat = attribution_map(doc, (STEPS, FEATURES))
    got = _by_group(doc)
    for t in (0, 4, 8):  # each cell of a run holds its run's value, its neighbours theirs
        np.testing.assert_allclose(heat[t : t + 4, 1], got[f"patch_r{t}_c1"])
        np.testing.assert_allclose(heat[t : t + 4, 0], got[f"patch_r{t}_c0"], atol=1e-12)
    path = tmp_path / "why.png"
    assert (
        main(
            [
                "--store",
                str(root / "store"),
                "explain",
                "fixed",
                "--inputs",
                json.dumps([window.tolist()]),
                "--patch",
                "4",
                "--png",
                str(path),
            ]
        )
        == 0
    )
    assert path.read_bytes()[:4] == b"\x89PNG"
    axis = features_axis((STEPS, FEATURES))
    card = importance_plot(
        doc["features"], np.abs(list(got.values())), tmp_path / "i.png", axis=axis
    )
    assert card.read_bytes()[:4] == b"\x89PNG"
    from training.card import window_runs  # the card's map: a column a feature, 4 steps a cell

    assert window_runs(doc["features"], features_axis((STEPS, FEATURES))) == (4, 1)


def test_a_window_of_any_length_drifts_per_feature(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each feature's mean and std over the window, and its steps: read as one grey image, two
    sensors' columns swapped (a pipeline's column order) moved nothing but the predictions."""
    store = LocalStore(tmp_path / "store")
    path = _linear(tmp_path / "m.onnx", "t")  # type: ignore[arg-type]
    assert main(["--store", store.uri, "publish", str(path), "--name", "sensors"]) == 0
    rng = np.random.default_rng(4)
    units = np.array([100.0, 0.0, -50.0])  # sensors of their own units
    train = (rng.normal(size=(200, STEPS, FEATURES)) + units).astype(np.float32)
    np.save(tmp_path / "train.npy", train)
    assert main(["--store", store.uri, "baseline", "sensors", str(tmp_path / "train.npy")]) == 0
    said = capsys.readouterr().out
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "sensors"}, pool)
    swapped = train[:, :, [2, 1, 0]]  # sensors 0 and 2 swapped: the overall mean is the same
    for start in range(0, 200, 50):
        body = json.dumps({"inputs": swapped[start : start + 50].tolist()})
        response = service.handle(http_event("POST", "/models/sensors/predict", body))
        assert response["statusCode"] == 200, response["body"]
    assert service.plane.drift is not None
    service.plane.drift.flush(last=True)  # its timer thread, holding the store open, ends
    assert main(["--store", store.uri, "monitor", "sensors", "--no-png"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("feature_")}
    assert set(rows) == {f"feature_{f}_{s}" for f in range(FEATURES) for s in ("mean", "std")}
    assert "DRIFT" in rows["feature_0_mean"] and "DRIFT" in rows["feature_2_mean"], out
    assert "DRIFT" not in rows["feature_1_mean"], out
    assert "drift baseline = 200 windows" in said and "own mean per feature" in said


def test_a_baseline_written_before_is_read_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A window of any length baselined before 2026-12-07 (one grey image's statistics) is
    still counted and monitored on those features, not refused as unfit."""
    store = LocalStore(tmp_path / "store")
    path = _linear(tmp_path / "m.onnx", "t")  # type: ignore[arg-type]
    assert main(["--store", store.uri, "publish", str(path), "--name", "older"]) == 0
    train = np.random.default_rng(5).normal(size=(200, STEPS, FEATURES))
    old = build(image_features(train, "hw"), image_feature_names(1))
    store.put_bytes(f"{version_prefix('older', '1')}/{BASELINE_FILE}", old.to_json().encode())
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "older"}, pool)
    for start in range(0, 200, 50):
        body = json.dumps({"inputs": (train[start : start + 50] + 1).tolist()})
        response = service.handle(http_event("POST", "/models/older/predict", body))
        assert response["statusCode"] == 200, response["body"]
    assert service.plane.drift is not None
    service.plane.drift.flush(last=True)  # its timer thread, holding the store open, ends
    capsys.readouterr()
    assert main(["--store", store.uri, "monitor", "older", "--no-png"]) == 0
    out = capsys.readouterr().out
    assert "older:1: 200 rows served" in out
    assert "DRIFT" in next(line for line in out.splitlines() if line.startswith("channel_0_mean"))


def test_text_sent_for_a_window_is_not_told_to_decode_an_image(root: Path) -> None:
    """A sensor window is no picture: text sent for one was told to decode a PNG with PIL."""
    store = LocalStore(root / "store")
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    service = service_from_env({"AIAAS_MODEL": "fixed"}, pool)
    body = json.dumps({"inputs": [[["a"] * FEATURES] * STEPS]})
    response = service.handle(http_event("POST", "/models/fixed/predict", body))
    error = body_of(response)["error"]
    assert response["statusCode"] == 422
    assert "must be a number (float32)" in error, error
    assert "PNG" not in error and "PIL" not in error, error


def test_the_card_of_a_window_of_any_length_says_why_it_has_no_importance(
    tmp_path: Path,
) -> None:
    """It said explanations "need one numeric input of fixed row shape", of a model /explain
    explains (each window on its own length)."""
    store = LocalStore(tmp_path / "store")
    path = _linear(tmp_path / "m.onnx", "t")  # type: ignore[arg-type]
    windows = np.random.default_rng(6).normal(size=(20, STEPS, FEATURES)).round(3)
    lines = [json.dumps({"x": w.tolist(), "y": float((w.sum(0) * WEIGHTS).sum())}) for w in windows]
    (tmp_path / "held.jsonl").write_text("\n".join(lines) + "\n")
    argv = ["publish", str(path), "--name", "w", "--data", str(tmp_path / "held.jsonl")]
    assert main(["--store", store.uri, *argv]) == 0
    card = (tmp_path / "store" / version_prefix("w", "1") / "card" / "card.md").read_text()
    line = next(line for line in card.splitlines() if "feature importance" in line)
    assert "any image size or window length" in line and "fixed row shape" not in line, line


def _features_first(path: Path) -> Path:
    """A 1-D CNN's layout, [N, 3 features, any steps] -> [N, 1]: y = sum of x[f, t] * WEIGHTS[f]."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", FEATURES, "t"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1])
    weights = helper.make_tensor("w", TensorProto.FLOAT, [FEATURES, 1], WEIGHTS.tolist())
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [2])
    nodes = [
        helper.make_node("ReduceSum", ["x", "axes"], ["summed"], keepdims=0),
        helper.make_node("MatMul", ["summed", "w"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "window", [x], [y], [weights, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_the_png_of_one_step_runs_of_features_first_says_rows_are_features(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A [3, 9] window of an [N, 3, -1] model is cut in one-step runs (patch_shape [1, 1], as a
    [9, 3] one's): its PNG said "rows: steps, columns: features" of rows that are its three
    features (rev16 3)."""
    from infra.cli import explain_plot

    store = LocalStore(tmp_path / "store")
    path = _features_first(tmp_path / "m.onnx")
    assert main(["--store", store.uri, "publish", str(path), "--name", "cnn"]) == 0
    captions: list[str] = []

    def kept(figure: object, file: object, **_: object) -> None:
        captions.extend(axes.get_xlabel() for axes in figure.axes)  # type: ignore[attr-defined]

    monkeypatch.setattr(explain_plot, "save", kept)
    window = np.random.default_rng(7).normal(size=(FEATURES, 9)).round(3)
    argv = ["explain", "cnn", "--inputs", json.dumps([window.tolist()]), "--png"]
    assert main(["--store", store.uri, *argv, str(tmp_path / "why.png")]) == 0
    assert "rows: features, columns: steps" in captions, captions
    assert "rows: steps, columns: features" not in captions, captions


def test_the_png_of_a_window_of_one_step_draws_its_features(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A [1, 3] window (T = 1) was drawn as a waveform of three "steps", a line joining three
    sensors under "step (attributed 1 step at a time)" (rev16 4)."""
    from infra.cli import explain_plot

    store = LocalStore(tmp_path / "store")
    path = _linear(tmp_path / "m.onnx", 1)
    assert main(["--store", store.uri, "publish", str(path), "--name", "one"]) == 0
    np.save(tmp_path / "train.npy", np.random.default_rng(8).normal(size=(40, 1, FEATURES)))
    assert main(["--store", store.uri, "baseline", "one", str(tmp_path / "train.npy")]) == 0
    figures: list[object] = []
    monkeypatch.setattr(explain_plot, "save", lambda figure, *_, **__: figures.append(figure))
    argv = ["explain", "one", "--inputs", "[[[0.5, 1.5, -2.0]]]", "--png"]
    assert main(["--store", store.uri, *argv, str(tmp_path / "why.png")]) == 0
    (figure,) = figures
    top, bottom = figure.axes  # type: ignore[attr-defined]
    assert bottom.get_xlabel() == "feature (a window of one step)"
    assert [line.get_linestyle() for line in top.get_lines()] == ["None"]  # points, no line
