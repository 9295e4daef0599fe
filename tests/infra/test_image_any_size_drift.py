"""Drift of an image model of any height and width (torch.onnx.export with H and W in
dynamic_axes): `aiaas baseline` bins each training image's per-channel mean and std and its
size (pixel columns mean nothing across sizes), from a JSONL of several sizes or an .npy; the
predict function counts served images of any size on those bins; `aiaas monitor` reads them.
Predictions are checked against onnxruntime directly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
import pytest

from functions.predict.service import PredictService
from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline
from functions.runtime.explain.background import BACKGROUND_FILE
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import http_event
from tests.infra.any_size_images import LABELS, predict_services, publish, reference

FEATURES = (
    *(f"channel_{c}_{s}" for c in range(3) for s in ("mean", "std")),
    "height",
    "width",
)
SIZES = [(8, 8), (10, 12), (6, 9)]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("any-size-drift")
    publish(root)
    rng = np.random.default_rng(7)
    with (root / "train.jsonl").open("w") as out:
        for index in range(60):
            image = rng.random((3, *SIZES[index % 3])).round(4)
            out.write(json.dumps({"id": index, "x": image.tolist()}) + "\n")
    np.save(root / "train.npy", rng.random((40, 3, 7, 5), np.float32))
    return root


def store_of(root: Path) -> str:
    return LocalStore(root / "store").uri


def baseline_of(root: Path, model: str) -> DriftBaseline:
    key = f"{version_prefix(model, '1')}/{BASELINE_FILE}"
    return DriftBaseline.from_json(LocalStore(root / "store").get_bytes(key))


@pytest.fixture(scope="module")
def baselined(root: Path) -> Path:
    assert main(["--store", store_of(root), "baseline", "anysize", str(root / "train.jsonl")]) == 0
    return root


def test_a_jsonl_of_several_sizes_gives_a_baseline_of_channel_statistics_and_size(
    baselined: Path,
) -> None:
    base = baseline_of(baselined, "anysize")
    assert base.features == FEATURES and base.rows == 60
    # No explain background: a left-out patch takes the image's own mean colour.
    assert not (baselined / "store" / version_prefix("anysize", "1") / BACKGROUND_FILE).exists()
    images = [
        np.asarray(json.loads(line)["x"])
        for line in (baselined / "train.jsonl").read_text().splitlines()
    ]
    means = np.array([image.mean(axis=(1, 2)) for image in images])
    np.testing.assert_allclose(base.low[[0, 2, 4]], means.min(0))
    np.testing.assert_allclose(base.high[[0, 2, 4]], means.max(0))
    assert (base.low[-2:].tolist(), base.high[-2:].tolist()) == ([6, 8], [10, 12])
    # Predictions come from the model on each image at its own size.
    predicted = [reference(baselined / "anysize.onnx", image).argmax() for image in images]
    assert base.prediction is not None and base.prediction.labels == tuple(LABELS.split(","))
    assert base.prediction.counts.tolist() == np.bincount(predicted, minlength=3).tolist()


def test_an_npy_gives_one_for_a_model_of_batch_one(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--store", store_of(root), "baseline", "anysize1", str(root / "train.npy")]) == 0
    assert "drift baseline = 40 images" in capsys.readouterr().out
    base = baseline_of(root, "anysize1")
    images = np.load(root / "train.npy")
    np.testing.assert_allclose(base.high[:6:2], images.mean(axis=(2, 3)).max(0), rtol=1e-6)
    predicted = [reference(root / "anysize1.onnx", image).argmax() for image in images]
    assert base.prediction is not None
    assert base.prediction.counts.tolist() == np.bincount(predicted, minlength=3).tolist()


def test_a_bad_training_line_is_named_and_nothing_is_written(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = (root / "train.jsonl").read_text().splitlines()[:3]
    lines.insert(2, json.dumps({"x": np.zeros((4, 5, 5)).tolist()}))
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    args = ["--store", store_of(root), "baseline", "segment", str(tmp_path / "bad.jsonl")]
    assert main(args) == 1
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "line 3: input 'x' must have shape [3, any, any] per row; got [4, 5, 5]; fix or "
            "remove it (1 bad)"
        )
    )
    assert not (root / "store" / version_prefix("segment", "1") / BASELINE_FILE).exists()


def test_served_images_of_any_size_are_counted_and_darker_ones_show_as_drift(
    baselined: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    services: dict[str, PredictService] = predict_services(baselined)
    service = services["anysize"]
    rng = np.random.default_rng(8)
    for index in range(100):  # the training sizes and one new, every image darker
        height, width = [*SIZES, (16, 4)][index % 4]
        images = rng.random((2, 3, height, width)) * 0.3
        body = orjson.dumps({"inputs": images.tolist()})
        response = service.handle(http_event("POST", "/models/anysize/predict", body))
        assert response["statusCode"] == 200, response["body"]
    assert service.plane.drift is not None
    service.plane.drift.flush()
    assert main(["--store", store_of(baselined), "monitor", "anysize", "--no-png"]) == 0
    out = capsys.readouterr().out
    assert "anysize:1: 200 rows served" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("channel_")}
    assert set(rows) == set(FEATURES[:6])
    assert "DRIFT" in rows["channel_0_mean"], out
