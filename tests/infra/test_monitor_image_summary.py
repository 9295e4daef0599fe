"""`aiaas monitor` of an image model whose served images all got brighter names a few drifted
pixels, not all of them; one with no baseline is told to give it images.

A fixed-size image model's baseline bins every pixel. A CNN over [N, 3, 32, 32] served
brightened images: 3,072 of 3,073 features drifted, and the line under the table named all
3,072 (~25 KB, `x_0, x_1, ...` in pixel order), as did `--fail-on-drift`'s error line
(hunt_journey4 2). An image model without a baseline was told by monitor to run `aiaas
baseline REF DATA.csv` (explain says IMAGES.npy), and a `publish --quantize` variant, rolled out
where its source was baselined, not by monitor nor explain that it needs its own (hunt_journey4
4). `aiaas baseline` of real images (an .npy), the real predict service
counting the served ones, then the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.predict.service import service_from_env
from functions.runtime.baseline_hint import sample_kind
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from functions.runtime.tensor_spec import TensorSpec
from infra.cli.main import main
from tests import onnx_factory
from tests.functions.test_predict_events import http_event


def _image_model(path: Path, side: int = 4) -> Path:
    """scores = flatten(image) @ W: float32 [N, 3, side, side] -> [N, 3]."""
    pixels = 3 * side * side
    weights = np.random.default_rng(0).normal(size=(pixels, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["image"], ["flat"]),
            helper.make_node("MatMul", ["flat", "W"], ["scores"]),
        ],
        "image",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, side, side])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(weights, "W")],
    )
    return onnx_factory.save(graph, path)


def served(root: Path, name: str, live: np.ndarray, cache: Path) -> None:
    """`live` answered by the real predict service of `name` on the store at `root`, 50 rows a
    request, and its drift counts written to the store."""
    store = LocalStore(root)
    service = service_from_env(
        {"AIAAS_MODEL": name}, ModelPool(Registry(store), ArtifactCache(store, cache))
    )
    for start in range(0, len(live), 50):
        body = orjson.dumps({"inputs": live[start : start + 50].tolist()})
        answer = service.handle(http_event("POST", f"/models/{name}/predict", body))
        assert answer["statusCode"] == 200, answer
    assert service.plane.drift is not None
    service.plane.drift.flush(last=True)  # its timer thread, holding the store open, ends


@pytest.fixture
def drifted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """img:1 baselined on 600 images in [0, 0.5], then served 600 images brighter by 0.6."""
    root = tmp_path / "store"
    model = _image_model(tmp_path / "img.onnx")
    assert (
        main(["--store", str(root), "publish", str(model), "--name", "img", "--labels", "a,b,c"])
        == 0
    )
    rng = np.random.default_rng(1)
    np.save(tmp_path / "train.npy", rng.uniform(0, 0.5, (600, 3, 4, 4)).astype(np.float32))
    assert main(["--store", str(root), "baseline", "img", str(tmp_path / "train.npy")]) == 0
    live = rng.uniform(0, 0.5, (600, 3, 4, 4)).astype(np.float32) + 0.6
    served(root, "img", live, tmp_path / "c")
    capsys.readouterr()
    return root


def test_the_summary_names_the_ten_most_drifted_and_counts_the_rest(
    drifted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--store", str(drifted), "monitor", "img", "--window", "10m", "--no-png"])
    out = capsys.readouterr().out
    assert code == 0, out
    table = out[out.index("img:1: 600 rows") :].splitlines()
    rows = [line.split() for line in table[2:] if line.split()[0].startswith(("image_", "("))]
    flagged = [r for r in rows if r[-1] == "0.2)"]  # `DRIFT (PSI > 0.2)`
    assert len(flagged) >= 11, table  # every pixel moved
    summary = table[len(rows) + 2]
    said = f"{len(flagged)} of {len(rows)} drifted: "
    assert summary.startswith(said) and summary.endswith(f" and {len(flagged) - 10} more"), summary
    named = summary[len(said) : summary.rindex(" and ")].split(", ")
    # The ten the table puts first (most drifted first), not image_0 to image_9 in pixel order.
    assert named == [r[0] for r in flagged[:10]], (named, flagged[:10])
    assert len(summary) < 300


def test_fail_on_drift_says_a_few_names_too(
    drifted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["monitor", "img", "--window", "10m", "--no-png", "--fail-on-drift"]
    code = main(["--store", str(drifted), *argv])
    err = capsys.readouterr().err
    assert code == 1 and "drift over PSI 0.2 in " in err, err
    line = next(line for line in err.splitlines() if "drift over PSI" in line)
    assert line.endswith(" more") and line.count("image_") == 10 and len(line) < 400, line


def test_fail_on_drift_names_the_most_drifted_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """12 features, each served shifted further than the one before: the gate's error line
    named x_0 .. x_9 in feature order, the least drifted, where the summary names x_11 first
    (rev11 6)."""
    root = tmp_path / "store"
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "wide",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        initializer=[numpy_helper.from_array(np.ones((12, 1), np.float32), "W")],
    )
    model = onnx_factory.save(graph, tmp_path / "wide.onnx")
    assert main(["--store", str(root), "publish", str(model), "--name", "t"]) == 0
    rng = np.random.default_rng(2)
    np.save(tmp_path / "train.npy", rng.uniform(0, 1, (600, 12)).astype(np.float32))
    assert main(["--store", str(root), "baseline", "t", str(tmp_path / "train.npy")]) == 0
    shifts = np.linspace(0.25, 0.8, 12, dtype=np.float32)
    served(root, "t", rng.uniform(0, 1, (600, 12)).astype(np.float32) + shifts, tmp_path / "c")
    capsys.readouterr()
    argv = ["--store", str(root), "monitor", "t", "--window", "10m", "--no-png"]
    assert main(argv) == 0
    summary = next(line for line in capsys.readouterr().out.splitlines() if " drifted: " in line)
    assert main([*argv, "--fail-on-drift"]) == 1
    line = next(line for line in capsys.readouterr().err.splitlines() if "drift over PSI" in line)
    assert line.endswith(", x_11, x_10, x_9, x_8, x_7, x_6, x_5, x_4, x_3 and 3 more"), line
    assert line[line.index(" 10m: ") + 6 :] == summary[summary.index(": ") + 2 :], summary


@pytest.mark.parametrize("quantize", [(), ("--quantize", "fp16")])
def test_an_image_model_without_a_baseline_is_told_to_give_it_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], quantize: tuple[str, ...]
) -> None:
    root, model = tmp_path / "store", _image_model(tmp_path / "img.onnx", side=16)
    assert main(["--store", str(root), "publish", str(model), "--name", "img", *quantize]) == 0
    capsys.readouterr()
    code = main(["--store", str(root), "monitor", "img", "--no-png"])
    err = capsys.readouterr().err
    said = "add one with `aiaas baseline img:1 IMAGES.npy` (a sample of its training images)"
    assert code == 1 and said in err, err
    variant = "a `publish --quantize` variant has none of its source's: give it the same data"
    assert (variant in err) == bool(quantize), err
    # Explanations read the same per-version baseline, and say the same of a variant.
    image = np.zeros((1, 3, 16, 16), np.float32).tolist()
    code = main(["--store", str(root), "explain", "img", "--inputs", orjson.dumps(image).decode()])
    err = capsys.readouterr().err
    assert code == 1 and "`aiaas baseline img:1 IMAGES.npy`" in err, err
    assert (variant in err) == bool(quantize), err


def test_a_time_series_without_a_baseline_is_not_told_of_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A waveform [N, 32, 1] (a GRU's) was told by monitor and explain to add `IMAGES.npy` (a
    sample of its training images): any one input of rank 3 read as an image (rev11 7)."""
    root = tmp_path / "store"
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["x"], ["flat"]),
            helper.make_node("MatMul", ["flat", "W"], ["scores"]),
        ],
        "wave",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 32, 1])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 2])],
        initializer=[numpy_helper.from_array(np.ones((32, 2), np.float32), "W")],
    )
    model = onnx_factory.save(graph, tmp_path / "wave.onnx")
    assert main(["--store", str(root), "publish", str(model), "--name", "wave"]) == 0
    capsys.readouterr()
    code = main(["--store", str(root), "monitor", "wave", "--no-png"])
    err = capsys.readouterr().err
    said = "add one with `aiaas baseline wave:1 ROWS.npy` (an array of its training inputs)"
    assert code == 1 and said in err, err
    wave = orjson.dumps(np.zeros((1, 32, 1), np.float32).tolist()).decode()
    code = main(["--store", str(root), "explain", "wave", "--inputs", wave])
    err = capsys.readouterr().err
    said = "`aiaas baseline wave:1 ROWS.npy` (an array of the inputs it was trained on)"
    assert code == 1 and said in err, err


@pytest.mark.parametrize(("name", "sides"), [("digits", (28, 28)), ("series", (100, 12))])
def test_an_n_a_b_input_without_a_baseline_is_told_its_shape_not_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, sides: tuple[int, int]
) -> None:
    """A greyscale digit [N, 28, 28] (no channel axis) was told by monitor and explain to add
    `ROWS.npy` (an array of its training inputs), as the waveform above is; then, called an
    image, a time series [N, 100, 12] was told `IMAGES.npy` (a sample of its training images;
    rev12 4). Its shape cannot tell them apart: both are told `INPUTS.npy` with the shape and
    both readings (`is_grid`, one rule for monitor and explain)."""
    root = tmp_path / "store"
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["x"], ["flat"]),
            helper.make_node("MatMul", ["flat", "W"], ["scores"]),
        ],
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *sides])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 2])],
        initializer=[numpy_helper.from_array(np.ones((sides[0] * sides[1], 2), np.float32), "W")],
    )
    model = onnx_factory.save(graph, tmp_path / f"{name}.onnx")
    assert main(["--store", str(root), "publish", str(model), "--name", name]) == 0
    capsys.readouterr()
    code = main(["--store", str(root), "monitor", name, "--no-png"])
    err = capsys.readouterr().err
    shape = f"[N, {sides[0]}, {sides[1]}]"
    said = (
        f"add one with `aiaas baseline {name}:1 INPUTS.npy` (a sample of its training inputs, "
        f"shape {shape}: images or sequences)"
    )
    assert code == 1 and said in err, err
    assert "IMAGES.npy" not in err and "training images" not in err, err
    row = orjson.dumps(np.zeros((1, *sides), np.float32).tolist()).decode()
    code = main(["--store", str(root), "explain", name, "--inputs", row])
    err = capsys.readouterr().err
    said = (
        f"`aiaas baseline {name}:1 INPUTS.npy` (a sample of the {shape} images or sequences it "
        "was trained on)"
    )
    assert code == 1 and said in err, err


@pytest.mark.parametrize(
    ("dtype", "shape", "kind"),
    [
        ("float32", (-1, 28, 28), "inputs"),  # a greyscale digit, or a sequence: said by shape
        ("uint8", (-1, 28, 28), "inputs"),
        ("float32", (-1, -1, -1), "inputs"),  # any size, as `any_size_layout` reads "hw"
        ("float32", (-1, 100, 12), "inputs"),  # a time series (rev12 4: was "images")
        ("float32", (-1, -1, 64), "inputs"),  # a sequence of embeddings (rev12 4)
        ("int64", (-1, 8, 8), "inputs"),  # a board of ints
        ("float32", (-1, 32, 1), "rows"),  # a waveform
        ("float32", (-1, -1, 1), "rows"),
        ("float32", (-1, 100, 4), "rows"),  # 100 steps of 4 values
        ("string", (-1, 28, 28), "rows"),
        ("float32", (-1, 3, 32, 32), "images"),
        ("float32", (-1, 32, 32, 3), "images"),
        ("float32", (-1, 4), "table"),
    ],
)
def test_which_inputs_the_hint_calls_images(dtype: str, shape: tuple[int, ...], kind: str) -> None:
    assert sample_kind([TensorSpec("x", dtype, shape)]) == kind
