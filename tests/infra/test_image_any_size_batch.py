"""`aiaas batch` for an image model of any height and width (torch.onnx.export with H and W in
dynamic_axes): an NPY file of one size, a JSONL file whose lines differ in size (scored one
run per size, answers in line order), bad lines reported while the rest are scored. Each answer
is checked against onnxruntime run on that image alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.any_size_images import LABELS, publish, reference

SIZES = [(10, 12), (6, 6), (10, 12), (5, 9)]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("any-size-batch")
    publish(root)
    rng = np.random.default_rng(1)
    np.save(root / "images.npy", rng.random((5, 3, 7, 11), np.float32))
    with (root / "mixed.jsonl").open("w") as out:
        for index, (height, width) in enumerate(SIZES):
            image = rng.random((3, height, width)).round(4)
            out.write(json.dumps({"id": index, "x": image.tolist()}) + "\n")
        out.write(json.dumps({"id": 4, "x": np.zeros((4, 6, 6)).tolist()}) + "\n")  # 4 channels
        nan = np.zeros((3, 6, 6)).tolist()
        nan[0][0][0] = float("nan")  # cast row by row in a chunk of several sizes
        out.write(json.dumps({"id": 5, "x": nan}) + "\n")
        out.write(json.dumps({"id": 6, "x": rng.random((3, 4, 4)).round(4).tolist()}) + "\n")
    return root


def batch(root: Path, model: str, name: str) -> int:
    return main(["--store", LocalStore(root / "store").uri, "batch", model, str(root / name)])


def output(root: Path, model: str, name: str) -> Path:
    return root / "store" / "batch" / model / "output" / name


@pytest.mark.parametrize("model", ["anysize", "anysize1"])
def test_an_npy_of_one_size_is_scored_as_the_model_answers_each_image(
    root: Path, model: str
) -> None:
    assert batch(root, model, "images.npy") == 0
    scored = np.load(output(root, model, "images.npz"))
    images = np.load(root / "images.npy")
    want = np.stack([reference(root / f"{model}.onnx", image) for image in images])
    np.testing.assert_allclose(scored["logits"], want, rtol=1e-5, atol=1e-6)
    names = LABELS.split(",")
    assert scored["label"].tolist() == [names[i] for i in want.argmax(axis=1)]


@pytest.mark.parametrize("model", ["anysize", "anysize1"])
def test_jsonl_lines_of_several_sizes_are_scored_in_order_and_bad_ones_reported(
    root: Path, model: str
) -> None:
    assert batch(root, model, "mixed.jsonl") == 0
    lines = [
        json.loads(line)
        for line in output(root, model, "mixed.jsonl").read_text().split("\n")
        if line
    ]
    assert [line["id"] for line in lines] == [0, 1, 2, 3, 6]
    sent = {
        json.loads(line)["id"]: np.asarray(json.loads(line)["x"])
        for line in (root / "mixed.jsonl").read_text().splitlines()
    }
    for line in lines:
        want = reference(root / f"{model}.onnx", sent[line["id"]])
        np.testing.assert_allclose(line["pred_logits"], want, rtol=1e-5, atol=1e-6)
    errors = [
        json.loads(e)
        for e in output(root, model, "mixed.jsonl.errors.jsonl").read_text().splitlines()
    ]
    assert [(e["line"], e["error"]) for e in errors] == [
        (5, "input 'x' must have shape [3, any, any] per row; got [4, 6, 6]"),
        (6, errors[1]["error"]),
    ]
    assert errors[1]["error"].startswith("input 'x' at index [0, 0, 0] is a missing value (NaN)")


def test_a_map_output_the_size_of_each_image_is_written_per_line(root: Path) -> None:
    # A fully convolutional model answers [3, H, W] for an [3, H, W] image: each line's own size.
    assert batch(root, "segment", "mixed.jsonl") == 0
    lines = [
        json.loads(line) for line in output(root, "segment", "mixed.jsonl").read_text().splitlines()
    ]
    sizes = [(*SIZES, (4, 4))[i] for i in range(5)]
    assert [np.shape(line["pred_logits"]) for line in lines] == [(3, *size) for size in sizes]
    image = np.asarray(json.loads((root / "mixed.jsonl").read_text().splitlines()[1])["x"])
    np.testing.assert_allclose(
        lines[1]["pred_logits"], reference(root / "segment.onnx", image), rtol=1e-5, atol=1e-6
    )
