"""A sensor window of 8 or more features (a GRU over 12 sensors: [N, -1, 12], [N, 50, 12]) was
explained and drift-monitored as a greyscale image: `patch_r0_c0` held steps 0-5 of sensors 0-5
together, so a model reading sensor 1 alone gave it the weight, and drift kept one mean of all
sensors, blind to two swapped columns (review rev16). Now a side of any length beside one fixed
at up to 64 is a window, and a row fixed on both sides ([50, 12]: a window or a picture) is one
where `aiaas publish --window-features` says so; undeclared, it is an image, and its answer
says `read_as: image`. Linear ONNX models, the CLI and the predict function's real handler."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline
from functions.runtime.explain.patches import WINDOW_FIELD, declared_window, features_axis
from functions.runtime.manifest import ModelManifest
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import body_of, http_event

SENSORS = 12


def _linear(path: Path, steps: int | str, features: int = SENSORS, first: bool = False) -> Path:
    """y = 2 x the sum over steps of feature 1: [N, steps, features] (or [N, features, steps]
    with `first`) -> [N, 1]."""
    row = [features, steps] if first else [steps, features]
    weights = np.zeros(features, np.float32)
    weights[1] = 2.0
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", *row])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1])
    w = helper.make_tensor("w", TensorProto.FLOAT, [features, 1], weights.tolist())
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [2 if first else 1])
    nodes = [
        helper.make_node("ReduceSum", ["x", "axes"], ["summed"], keepdims=0),
        helper.make_node("MatMul", ["summed", "w"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "window", [x], [y], [w, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _service(store: LocalStore, folder: Path, model: str):  # type: ignore[no-untyped-def]
    pool = ModelPool(Registry(store), ArtifactCache(store, folder / "cache"))
    return service_from_env({"AIAAS_MODEL": model}, pool)


def _explain(store: LocalStore, folder: Path, model: str, window: np.ndarray) -> dict:
    service = _service(store, folder, model)
    body = json.dumps({"inputs": [window.tolist()]})
    response = service.handle(http_event("POST", f"/models/{model}/explain", body))
    doc = body_of(response)
    assert response["statusCode"] == 200, doc
    return doc


def _by_group(doc: dict) -> dict[str, float]:
    values = np.asarray(doc["explanations"][0]["attributions"]).reshape(-1)
    return dict(zip(doc["features"], values.tolist(), strict=True))


def _weighted_columns(doc: dict, axis: int = 1) -> set[int]:
    """The feature (column, or row with axis 0) of each patch given any weight."""
    got = _by_group(doc)
    side = 2 if axis == 1 else 1
    return {int(name[1:].split("_")[side][1:]) for name, v in got.items() if abs(v) > 1e-4}


def _publish(store: LocalStore, path: Path, name: str, *flags: str) -> ModelManifest:
    assert main(["--store", store.uri, "publish", str(path), "--name", name, *flags]) == 0
    return Registry(store).manifest(name, "1")


def test_an_any_length_window_of_12_sensors_is_explained_per_feature(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    manifest = _publish(store, _linear(tmp_path / "m.onnx", "t"), "gru")
    assert declared_window(manifest) is None  # no declaration: [-1, 12] is a window by its shape
    window = np.random.default_rng(1).normal(size=(20, SENSORS)).astype(np.float32)
    doc = _explain(store, tmp_path, "gru", window)
    assert doc["parameters"]["read_as"] == "window"
    rows, width = doc["parameters"]["patch_shape"]
    assert width == 1
    assert {int(n.rsplit("_c", 1)[1]) for n in doc["features"]} == set(range(SENSORS))
    assert _weighted_columns(doc) == {1}  # only sensor 1 matters, and only its runs say so
    got = _by_group(doc)
    mean = float(window[:, 1].mean())
    for t in range(0, 20, rows):
        want = 2.0 * float((window[t : t + rows, 1] - mean).sum())
        assert got[f"patch_r{t}_c1"] == pytest.approx(want, abs=1e-3)


def test_an_any_length_window_of_12_sensors_drifts_per_sensor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two sensors swapped: one mean of every sensor did not move; each sensor's own does."""
    store = LocalStore(tmp_path / "store")
    _publish(store, _linear(tmp_path / "m.onnx", "t"), "gru")
    rng = np.random.default_rng(4)
    units = np.linspace(-50, 100, SENSORS)
    train = (rng.normal(size=(200, 10, SENSORS)) + units).astype(np.float32)
    np.save(tmp_path / "train.npy", train)
    assert main(["--store", store.uri, "baseline", "gru", str(tmp_path / "train.npy")]) == 0
    assert "200 windows" in capsys.readouterr().out
    service = _service(store, tmp_path, "gru")
    swapped = train[:, :, [2, 1, 0, *range(3, SENSORS)]]
    for start in range(0, 200, 50):
        body = json.dumps({"inputs": swapped[start : start + 50].tolist()})
        response = service.handle(http_event("POST", "/models/gru/predict", body))
        assert response["statusCode"] == 200, response["body"]
    assert service.plane.drift is not None
    service.plane.drift.flush(last=True)  # its timer thread, holding the store open, ends
    assert main(["--store", store.uri, "monitor", "gru", "--no-png"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("feature_")}
    assert len(rows) == 2 * SENSORS, out
    assert "DRIFT" in rows["feature_0_mean"] and "DRIFT" in rows["feature_2_mean"], out
    assert "DRIFT" not in rows["feature_1_mean"], out


def test_a_declared_fixed_window_is_explained_per_feature(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    path = _linear(tmp_path / "m.onnx", 50)
    manifest = _publish(store, path, "declared", "--window-features", "last")
    assert manifest.preprocessing[WINDOW_FIELD] == "last"
    assert manifest.to_dict()["schema_version"] == 1  # older readers read it (as an image)
    assert main(["--store", store.uri, "show", "declared"]) == 0
    assert "window:    features on the row's last side" in capsys.readouterr().out
    train = np.random.default_rng(2).normal(size=(40, 50, SENSORS)).astype(np.float32)
    np.save(tmp_path / "train.npy", train)
    assert main(["--store", store.uri, "baseline", "declared", str(tmp_path / "train.npy")]) == 0
    window = np.random.default_rng(3).normal(size=(50, SENSORS)).astype(np.float32)
    doc = _explain(store, tmp_path, "declared", window)
    assert doc["parameters"]["read_as"] == "window"
    assert doc["parameters"]["patch_shape"][1] == 1
    assert _weighted_columns(doc) == {1}
    capsys.readouterr()
    argv = ["explain", "declared", "--inputs", json.dumps([window.tolist()])]
    assert main(["--store", store.uri, *argv]) == 0
    said = capsys.readouterr()
    assert "read_as=window" in said.out and "greyscale" not in said.err


def test_a_declared_features_first_window_is_cut_along_its_rows(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    path = _linear(tmp_path / "m.onnx", 16, first=True)
    _publish(store, path, "cnn", "--window-features", "first")
    train = np.random.default_rng(5).normal(size=(30, SENSORS, 16)).astype(np.float32)
    np.save(tmp_path / "train.npy", train)
    assert main(["--store", store.uri, "baseline", "cnn", str(tmp_path / "train.npy")]) == 0
    window = np.random.default_rng(6).normal(size=(SENSORS, 16)).astype(np.float32)
    doc = _explain(store, tmp_path, "cnn", window)
    assert doc["parameters"]["patch_shape"][0] == 1
    assert _weighted_columns(doc, axis=0) == {1}


def test_a_declaration_reaches_drift_of_a_window_of_over_64_features(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """[-1, 100] stays a picture by its shape (an embedding sequence's is); declared, each of
    its 100 features is watched on its own."""
    store = LocalStore(tmp_path / "store")
    train = np.random.default_rng(7).normal(size=(60, 5, 100)).astype(np.float32)
    np.save(tmp_path / "train.npy", train)
    for name, flags in (("wide", ()), ("wide-window", ("--window-features", "last"))):
        _publish(store, _linear(tmp_path / f"{name}.onnx", "t", 100), name, *flags)
        assert main(["--store", store.uri, "baseline", name, str(tmp_path / "train.npy")]) == 0
    said = capsys.readouterr().out
    assert "wide:1: drift baseline = 60 images" in said
    assert "wide-window:1: drift baseline = 60 windows" in said
    for name, width in (("wide", 4), ("wide-window", 2 * 100 + 1)):
        text = store.get_bytes(f"{version_prefix(name, '1')}/{BASELINE_FILE}")
        assert DriftBaseline.from_json(text).width == width


def test_an_undeclared_fixed_window_is_still_an_image_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reviewer's reproduction: [n, 50, 12] weighting sensor 1 alone, cut into squares;
    unchanged undeclared (its shape cannot tell), but the answer says how it was read."""
    store = LocalStore(tmp_path / "store")
    manifest = _publish(store, _linear(tmp_path / "m.onnx", 50), "picture")
    assert WINDOW_FIELD not in manifest.preprocessing
    train = np.random.default_rng(8).normal(size=(40, 50, SENSORS)).astype(np.float32)
    np.save(tmp_path / "train.npy", train)
    assert main(["--store", store.uri, "baseline", "picture", str(tmp_path / "train.npy")]) == 0
    window = np.random.default_rng(9).normal(size=(50, SENSORS)).astype(np.float32)
    doc = _explain(store, tmp_path, "picture", window)
    assert doc["parameters"]["read_as"] == "image"
    assert "patch_shape" not in doc["parameters"]
    assert abs(_by_group(doc)["patch_r0_c0"]) > 1e-3  # a square of sensors 0-5 gets sensor 1's
    capsys.readouterr()
    argv = ["explain", "picture", "--inputs", json.dumps([window.tolist()])]
    assert main(["--store", store.uri, *argv]) == 0
    said = capsys.readouterr()
    assert "read_as=image" in said.out
    assert "greyscale image" in said.err and "--window-features last" in said.err


def test_an_embedding_sequence_stays_a_picture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    _publish(store, _linear(tmp_path / "m.onnx", "t", 768), "embedded")
    assert features_axis((-1, 768)) is None
    doc = _explain(
        store, tmp_path, "embedded", np.random.default_rng(0).random((2, 768), np.float32)
    )
    assert doc["parameters"]["read_as"] == "image"
    assert "patch_shape" not in doc["parameters"]
    np.save(tmp_path / "train.npy", np.ones((10, 3, 768), np.float32))
    assert main(["--store", store.uri, "baseline", "embedded", str(tmp_path / "train.npy")]) == 0
    assert "10 images" in capsys.readouterr().out


def test_a_manifest_without_the_declaration_reads_as_before(tmp_path: Path) -> None:
    """A manifest written before `--window-features` (no preprocessing field) reads, and one
    with it round-trips; an unknown side is no declaration."""
    store = LocalStore(tmp_path / "store")
    manifest = _publish(store, _linear(tmp_path / "m.onnx", 50), "w", "--window-features", "last")
    data = json.loads(manifest.to_json())
    assert ModelManifest.from_json(manifest.to_json()) == manifest
    data.pop("preprocessing")
    old = ModelManifest.from_dict(data)
    assert declared_window(old) is None and features_axis((50, SENSORS)) is None
    data["preprocessing"] = {WINDOW_FIELD: "sideways"}
    assert declared_window(ModelManifest.from_dict(data)) is None


@pytest.mark.parametrize(
    ("steps", "features", "side", "said"),
    [
        ("t", SENSORS, "first", "no fixed number of features on its first side"),
        (None, SENSORS, "last", "a window is a 2-D row"),
    ],
)
def test_a_row_that_cannot_be_a_window_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    steps: str | None,
    features: int,
    side: str,
    said: str,
) -> None:
    store = LocalStore(tmp_path / "store")
    if steps is None:  # a table [N, 12]
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", features])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", features])
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "t", [x], [y])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        path = tmp_path / "table.onnx"
        onnx.save(model, path)
    else:
        path = _linear(tmp_path / "m.onnx", steps, features)
    argv = ["--store", store.uri, "publish", str(path), "--name", "x", "--window-features", side]
    assert main(argv) != 0
    assert f"--window-features {side}: " in (err := capsys.readouterr().err) and said in err, err
    assert Registry(store).versions("x", missing_ok=True) == []


def test_the_card_of_a_declared_window_ranks_its_sensors(tmp_path: Path) -> None:
    """publish --data: the card's importance is of runs of one sensor, sensor 1's first."""
    store = LocalStore(tmp_path / "store")
    path = _linear(tmp_path / "m.onnx", 10)
    windows = np.random.default_rng(10).normal(size=(20, 10, SENSORS)).round(3)
    lines = [json.dumps({"x": w.tolist(), "y": float(2 * w[:, 1].sum())}) for w in windows]
    (tmp_path / "held.jsonl").write_text("\n".join(lines) + "\n")
    flags = ("--window-features", "last", "--data", str(tmp_path / "held.jsonl"))
    _publish(store, path, "carded", *flags)
    card = (tmp_path / "store" / version_prefix("carded", "1") / "card" / "card.md").read_text()
    line = next(line for line in card.splitlines() if "feature importance" in line)
    top = line.split("largest ", 1)[1].split(",")[0]
    assert top.startswith("patch_r") and top.split()[0].endswith("_c1"), line


def test_text_sent_for_a_window_of_12_sensors_is_not_told_to_decode_an_image(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "store")
    _publish(store, _linear(tmp_path / "m.onnx", "t"), "gru")
    service = _service(store, tmp_path, "gru")
    body = json.dumps({"inputs": [[["a"] * SENSORS] * 5]})
    response = service.handle(http_event("POST", "/models/gru/predict", body))
    error = body_of(response)["error"]
    assert response["statusCode"] == 422
    assert "must be a number (float32)" in error, error
    assert "PNG" not in error and "PIL" not in error, error
