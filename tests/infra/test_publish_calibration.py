"""`aiaas publish --data` cards say whether a classifier's probabilities mean what they say.

A card showed accuracy, F1 and a confusion matrix, and nothing of whether a 0.9 is right nine
times in ten. The models here are hand-built ONNX logits of three Gaussian classes: the Bayes
classifier's own logits (calibrated by construction) and the same logits x20 (over-confident:
the same answers, near-certain probabilities). Each card's numbers are checked against numpy
over onnxruntime's outputs for the same rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.cli_run import run
from tests.onnx_factory import save

LABELS = ("red", "green", "blue")
CENTRES = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])  # unit variance: classes overlap
ROWS = 400


def gaussian_logits(path: Path, scale: float) -> Path:
    """logits = scale * (x @ mu.T - |mu|^2 / 2): at scale 1 the classes' true log-posteriors."""
    w = (scale * CENTRES.T).astype(np.float32)
    b = (-scale * (CENTRES**2).sum(axis=1) / 2).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "B"], ["logits"])],
        "gaussian",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )  # fmt: skip
    return save(graph, path)


@pytest.fixture(scope="module")
def held_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """ROWS rows drawn from the three classes, as JSONL with `label`; (file, x, class indices)."""
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, ROWS)
    x = (CENTRES[truth] + rng.normal(size=(ROWS, 2))).astype(np.float32)
    path = tmp_path_factory.mktemp("calibration") / "held-out.jsonl"
    path.write_text(
        "".join(
            json.dumps({"x": row.tolist(), "label": LABELS[t]}) + "\n"
            for row, t in zip(x, truth, strict=True)
        )
    )
    return path, x, truth


def expected(model: Path, x: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """ECE, max error and Brier computed here, row by row, from onnxruntime's logits."""
    logits = ort.InferenceSession(str(model)).run(None, {"x": x})[0].astype(np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = exp / exp.sum(axis=1, keepdims=True)
    bins: dict[int, list[tuple[float, bool]]] = {}
    for row, t in zip(probs, truth, strict=True):
        top = int(np.argmax(row))
        bins.setdefault(min(int(row[top] * 10), 9), []).append((float(row[top]), top == t))
    gaps = {
        k: abs(float(np.mean([r for _, r in v])) - float(np.mean([c for c, _ in v])))
        for k, v in bins.items()
    }
    onehot = np.eye(3)[truth]
    return {
        "ece": sum(len(bins[k]) / len(x) * gap for k, gap in gaps.items()),
        "max_error": max(gaps.values()),
        "brier": float(np.mean([((p - o) ** 2).sum() for p, o in zip(probs, onehot, strict=True)])),
        "filled": {k: len(v) for k, v in bins.items()},
    }


def publish(store: LocalStore, model: Path, name: str, data: Path, *extra: str) -> str:
    argv = ("publish", str(model), "--name", name, "--labels", ",".join(LABELS))
    code, out, err = run(store, *argv, "--data", str(data), *extra)
    assert code == 0, err
    return out


def test_the_card_calibration_is_that_of_the_served_probabilities(
    tmp_path: Path, held_out: tuple[Path, np.ndarray, np.ndarray]
) -> None:
    data, x, truth = held_out
    store = LocalStore(tmp_path / "store")
    calm = gaussian_logits(tmp_path / "calm.onnx", 1.0)
    sure = gaussian_logits(tmp_path / "sure.onnx", 20.0)
    publish(store, calm, "calm", data)
    publish(store, sure, "sure", data)
    reg = Registry(store)
    measured = {}
    for name, model in (("calm", calm), ("sure", sure)):
        manifest = reg.manifest(name, "1")
        got = manifest.metrics["held_out"]["calibration"]
        want = expected(model, x, truth)
        assert got["rows"] == ROWS and got["bins"] == 10
        for key in ("ece", "max_error", "brier"):
            assert got[key] == pytest.approx(want[key], abs=1e-6), key
        assert {i: b["rows"] for i, b in enumerate(got["per_bin"]) if b["rows"]} == want["filled"]
        json.dumps(got, allow_nan=False)  # plain JSON numbers
        hits = sum(b["accuracy"] * b["rows"] for b in got["per_bin"] if b["rows"])
        assert hits / ROWS == pytest.approx(manifest.metrics["held_out"]["accuracy"])
        listed = {f.path: f for f in manifest.files}
        assert "card/reliability.png" in listed
        png = store.get_bytes(f"models/{name}/versions/1/card/reliability.png")
        assert png.startswith(b"\x89PNG") and len(png) == listed["card/reliability.png"].size
        text = store.get_bytes(f"models/{name}/versions/1/card/card.md").decode()
        section = text.split("## Calibration\n", 1)[1].split("\n## ", 1)[0]
        line = (
            f"ECE {got['ece']:.2g}, max {got['max_error']:.2g} over 10 bins of {ROWS} rows of "
            f"held-out.jsonl; Brier {got['brier']:.2g}"
        )
        assert line in section and "rough" not in section
        assert "![Reliability diagram](reliability.png)" in section
        assert "reliability.png" not in text.split("## Plots", 1)[1]  # drawn once, in its section
        code, out, _ = run(store, "show", f"{name}:1")
        assert (
            code == 0
            and f"      calibration: {line.replace('rows of held-out.jsonl', 'held-out rows')}"
            in out
        )
        measured[name] = got
    # x20 answers the same classes with near-certain probabilities: accuracy alike, ECE not
    assert measured["calm"]["ece"] < 0.06 < 0.15 < measured["sure"]["ece"]
    assert measured["calm"]["brier"] < measured["sure"]["brier"]


def test_decision_values_served_as_scores_have_no_calibration_and_the_card_says_why(
    tmp_path: Path, held_out: tuple[Path, np.ndarray, np.ndarray]
) -> None:
    data, _, _ = held_out
    store = LocalStore(tmp_path / "store")
    model = gaussian_logits(tmp_path / "margins.onnx", 1.0)
    publish(store, model, "margins", data, "--activation", "none")
    manifest = Registry(store).manifest("margins", "1")
    assert "calibration" not in manifest.metrics["held_out"]
    assert "card/reliability.png" not in {f.path for f in manifest.files}
    text = store.get_bytes("models/margins/versions/1/card/card.md").decode()
    section = text.split("## Calibration\n", 1)[1].split("\n## ", 1)[0]
    assert "No calibration: output 'logits' (activation none) holds scores that are no " in section
    assert "values outside 0..1" in section


def test_a_few_rows_are_said_to_give_a_rough_estimate(
    tmp_path: Path, held_out: tuple[Path, np.ndarray, np.ndarray]
) -> None:
    data, _, _ = held_out
    few = tmp_path / "few.jsonl"
    few.write_text("".join(data.read_text().splitlines(keepends=True)[:40]))
    store = LocalStore(tmp_path / "store")
    publish(store, gaussian_logits(tmp_path / "m.onnx", 1.0), "few", few)
    text = store.get_bytes("models/few/versions/1/card/card.md").decode()
    assert "over 10 bins of 40 rows of few.jsonl" in text
    assert "(a rough estimate: fewer than 100 rows, a few a bin)" in text
