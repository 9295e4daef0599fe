"""`aiaas publish --quantize` on models that answer several values a row and no classes (an
embedding, raw scores, several targets). Without --data their variant was compared with
nothing: the made-up rows went through --data's scoring, which refuses several values a row,
and that refusal was taken for the model refusing made-up values. So an fp16 variant 3.9x off
and an int8 LSTM encoder far off were published with no warning, and with --data such a model
could not be published at all. Now a row of several values has changed when it moved by over
2% of its length (L2), as `output_change` defines it, on made-up rows and on --data's rows.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import int8_cpu
from tests.infra.test_publish_quantize import publish, stored_file


def _save(path: Path, nodes: list[Any], width: int, weights: dict[str, np.ndarray]) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", width])],
        [numpy_helper.from_array(value, name) for name, value in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _clamped(path: Path, width: int) -> Path:
    """x @ W (1e6 each) @ W2 (1e-9 each): fp16 holds no 1e-9, so its variant answers another
    value at every input scale (3.9x the source's)."""
    matmuls = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("MatMul", ["h", "W2"], ["y"])]  # fmt: skip
    weights = {"W": np.full((64, 256), 1e6, np.float32), "W2": np.full((256, width), 1e-9, np.float32)}  # fmt: skip
    return _save(path, matmuls, width, weights)


def _quantization(store: LocalStore, name: str) -> dict[str, Any]:
    return Registry(store).manifest(name, "1").extras["quantization"]  # type: ignore[no-any-return]


def _warnings(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if line.strip().startswith("warning:")]


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


@pytest.mark.parametrize("width", [1, 4])
def test_an_fp16_variant_far_off_is_warned_of_whatever_its_width(
    tmp_path: Path, width: int
) -> None:
    """The one-value graph was warned of (49 of 64 rows); the same graph answering 4 values a row
    was published silently, with no probe in its manifest."""
    store = LocalStore(tmp_path / "store")
    model = _clamped(tmp_path / "clamped.onnx", width)
    code, out, err = publish(store, model, "clamped", "--quantize", "fp16")
    assert code == 0, err
    variant = stored_file(store, "clamped", tmp_path)
    ones = np.ones((1, 64), np.float32)
    assert _run(variant, ones)[0, 0] > 3 * _run(model, ones)[0, 0]  # how far off it serves
    probe = _quantization(store, "clamped")["probe"]
    assert probe["rows"] == 64 and probe["changed"] > 32, probe
    said = _warnings(out)
    assert len(said) == 1 and said[0].startswith("warning: the fp16 variant answers "), out
    assert f"{probe['changed']} of 64 made-up rows" in said[0]
    if width > 1:
        assert probe["width"] == width and probe["max_relative_change"] > 1
        assert "(rows of 4 values moved by over 2% of their length" in said[0]
        assert said[0].endswith(
            "check it on real rows with --data FILE, which compares their outputs"
        )


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two torch exports answering a 128-value state a row: an LSTM over 10 steps of 16 features,
    whose int8 variant moves a third of the made-up rows by over 2%, and an MLP, whose int8
    variant moves none by over 1.3%."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    nn = torch.nn

    class Encoder(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(16, 128, batch_first=True)

        def forward(self, x: Any) -> Any:
            return self.lstm(x)[1][0][0]

    mlp = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 128))  # fmt: skip
    root, paths = tmp_path_factory.mktemp("encoders"), {}
    for name, net, example in (
        ("lstm", Encoder(), torch.randn(2, 10, 16)),
        ("mlp", mlp, torch.randn(2, 64)),
    ):
        paths[name] = root / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net.eval(), example, str(paths[name]), input_names=["x"], output_names=["y"],
                dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False,
            )  # fmt: skip
    return paths


def test_an_int8_lstm_encoder_far_off_is_warned_of(
    encoders: dict[str, Path], tmp_path: Path
) -> None:
    store = LocalStore(tmp_path / "store")
    code, out, err = publish(store, encoders["lstm"], "lstm", "--quantize", "int8")
    assert code == 0, err
    probe = _quantization(store, "lstm")["probe"]
    assert probe["width"] == 128 and probe["changed"] > 0.1 * 64, probe
    assert probe["min_cosine"] < 0.999
    assert [line for line in _warnings(out) if "made-up rows" in line], out


def test_a_sound_int8_embedding_is_compared_and_not_warned_of(
    encoders: dict[str, Path], tmp_path: Path
) -> None:
    """int8 moves this MLP's rows by about 1% (of their length): no warning, the figures kept."""
    if int8_cpu.SATURATES:
        pytest.skip(int8_cpu.REASON)
    store = LocalStore(tmp_path / "store")
    code, out, err = publish(store, encoders["mlp"], "emb", "--quantize", "int8")
    assert code == 0, err
    probe = _quantization(store, "emb")["probe"]
    assert probe["rows"] == 64 and probe["width"] == 128
    assert probe["changed"] <= 0.1 * 64 and 0 < probe["max_relative_change"] < 0.02, probe
    assert probe["min_cosine"] > 0.999 and probe["median_cosine"] > 0.999
    assert not [line for line in _warnings(out) if "made-up rows" in line], out


def test_with_data_the_outputs_are_compared_and_the_card_has_no_metrics(
    encoders: dict[str, Path], tmp_path: Path
) -> None:
    """--data scores one value a row against labels: an embedding model was refused ("nothing
    can be scored"), so its variant could not be checked on real rows at all. Its rows need no
    label now; its card has no metrics."""
    rows = np.random.default_rng(0).standard_normal((120, 64)).astype(np.float32)
    data = tmp_path / "rows.npz"
    np.savez(data, x=rows)
    store = LocalStore(tmp_path / "store")
    argv = ("--quantize", "int8", "--data", str(data))
    code, out, err = publish(store, encoders["mlp"], "emb", *argv)
    assert code == 0, err
    evaluation = _quantization(store, "emb")["evaluation"]
    before, after = _run(encoders["mlp"], rows), _run(stored_file(store, "emb", tmp_path), rows)
    distance = np.linalg.norm(after - before, axis=1) / np.linalg.norm(before, axis=1)
    assert evaluation["compared"] == "outputs" and evaluation["output"] == "y"
    assert (evaluation["data"], evaluation["rows"], evaluation["width"]) == ("rows.npz", 120, 128)
    assert evaluation["changed"] == int((distance > 0.02).sum())
    assert evaluation["max_relative_change"] == pytest.approx(distance.max(), rel=1e-3)
    assert evaluation["alone"]["rows"] == 120
    assert (
        "metric" not in evaluation
        and "held_out" not in Registry(store).manifest("emb", "1").metrics
    )
    said = [line for line in out.splitlines() if "so the card has no metrics" in line]
    assert len(said) == 1 and "on 120 rows of rows.npz" in said[0], out
    warned = [line for line in _warnings(out) if "rows of rows.npz otherwise" in line]
    assert int8_cpu.SATURATES or not warned, out  # where int8 saturates it is warned of, rightly


def test_with_data_a_variant_far_off_is_warned_of(tmp_path: Path) -> None:
    """JSON lines of the input alone. Rows with a label are to be scored, which several values
    a row cannot be: refused as before, saying what works."""
    rows = np.random.default_rng(1).standard_normal((40, 64))
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"x": row.tolist()}) + "\n" for row in rows))
    store = LocalStore(tmp_path / "store")
    model = _clamped(tmp_path / "clamped.onnx", 4)
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("".join(json.dumps({"x": r.tolist(), "y": 1.0}) + "\n" for r in rows))
    code, _, err = publish(store, model, "clamped", "--quantize", "fp16", "--data", str(labelled))
    assert code == 1 and "holds 4 values a row and the model names no classes" in err, err
    assert "if they are class scores, publish it with --labels" in err
    code, out, err = publish(store, model, "clamped", "--quantize", "fp16", "--data", str(data))
    assert code == 0, err
    evaluation = _quantization(store, "clamped")["evaluation"]
    assert (evaluation["rows"], evaluation["changed"]) == (40, 40), evaluation
    said = [line for line in _warnings(out) if "rows of rows.jsonl" in line]
    assert len(said) == 1 and said[0].startswith(
        "warning: the fp16 variant answers 40 of 40 rows"
    ), out


def test_a_model_refusing_every_made_up_row_is_said_not_compared(tmp_path: Path) -> None:
    """Its rows index a table past its end (each made-up value + 1000): no row is answered, so
    nothing compares the variant, and publish says so where it said nothing."""
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=1),
        helper.make_node("Add", ["s", "far"], ["shifted"]),
        helper.make_node("Abs", ["shifted"], ["a"]),
        helper.make_node("Cast", ["a"], ["i"], to=TensorProto.INT64),
        helper.make_node("Squeeze", ["i", "axis"], ["index"]),
        helper.make_node("Gather", ["table", "index"], ["row"]),
        helper.make_node("MatMul", ["row", "W"], ["y"]),
    ]
    weights = {
        "far": np.array([1000.0], np.float32),
        "axis": np.array([1], np.int64),
        "table": np.ones((16, 256), np.float32),
        "W": np.full((256, 8), 0.5, np.float32),
    }
    model = _save(tmp_path / "table.onnx", nodes, 8, weights)
    store = LocalStore(tmp_path / "store")
    code, out, err = publish(store, model, "table", "--quantize", "fp16")
    assert code == 0, err
    probe = _quantization(store, "table")["probe"]
    assert probe["skipped"].startswith("the model refuses made-up rows ("), probe
    said = [line for line in out.splitlines() if "not compared with its source" in line]
    assert len(said) == 1, out
    assert (
        said[0]
        .strip()
        .startswith("the fp16 variant was not compared with its source on made-up rows")
    )
    assert said[0].endswith("check it on real rows with --data FILE")
