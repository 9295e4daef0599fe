"""A model trained on a flat CSV reshaped by `dataset.input_shape` batch-scores that same CSV.

An "MNIST-style" file (label, pixel0 ... pixel63) trained as [1, 8, 8] by the `cnn` recipe was
published with no `features` (those name an [N, F] input's columns), so `aiaas batch` of the
training file asked for x_0 ... x_63 and advised `--features pixel0,...`, which publish refuses
for such an input. Training now records the columns it read (`preprocessing.flat_columns`),
and batch reads them by name, in training's order, reshaped as the input is. A model without
them (one published by `aiaas publish`) is told to rename the columns, not to use --features.

Through the real CLI: `aiaas train` and `aiaas publish` (main, in process), `aiaas batch`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.batch_support import read_csv
from tests.torchless import torch_or_skip

NAME = "pixels"
PIXELS = [f"pixel{i}" for i in range(64)]


@dataclass(frozen=True)
class Trained:
    root: Path
    store: LocalStore
    rows: np.ndarray  # [N, 64] as the file holds them
    labels: list[str]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    torch_or_skip()
    root = tmp_path_factory.mktemp("reshaped")
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 17, size=(90, 64))
    labels = [str(i % 3) for i in range(len(rows))]
    lines = [",".join(["label", *PIXELS])]
    lines += [",".join([y, *map(str, row)]) for y, row in zip(labels, rows, strict=True)]
    (root / "pixels.csv").write_text("\n".join(lines) + "\n")
    (root / "job.yaml").write_text(
        f"name: {NAME}\ntask: classification\n"
        "dataset: {path: pixels.csv, target: label, input_shape: [1, 8, 8]}\n"
        "recipe: {name: cnn, params: {channels: [4], hidden: 16}}\nepochs: 1\nseed: 0\n"
    )
    here = Path.cwd()
    os.chdir(root)
    try:
        argv = ["--store", str(root / "store"), "train", "job.yaml", "--publish"]
        assert main([*argv, "--no-progress", "--out", str(root / "run")]) == 0
    finally:
        os.chdir(here)
    return Trained(root, LocalStore(root / "store"), rows.astype(np.float32), labels)


def _logits(trained: Trained, rows: np.ndarray) -> np.ndarray:
    path = trained.store.root / "models" / NAME / "versions" / "1" / "model.onnx"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": rows.reshape(-1, 1, 8, 8)})[0])


def _scored(trained: Trained, model: str, data: Path, name: str) -> np.ndarray:
    store = trained.store
    assert main(["--store", store.uri, "batch", model, str(data), "--name", name]) == 0
    out = read_csv(store, f"batch/{model}/output/{name}")
    return np.array([[float(r[f"pred_logits_{k}"]) for k in range(3)] for r in out])


def test_the_training_file_scores_as_trained(
    trained: Trained, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    manifest = Registry(trained.store).manifest(NAME, "1")
    assert manifest.features == ()
    assert manifest.preprocessing["flat_columns"] == PIXELS
    # The training file itself, its label column passed through.
    scored = _scored(trained, NAME, trained.root / "pixels.csv", "train.csv")
    np.testing.assert_allclose(scored, _logits(trained, trained.rows), rtol=1e-5, atol=1e-5)
    # Columns in another order are read by name, in training's order.
    order = np.random.default_rng(1).permutation(64)
    shuffled = tmp_path / "shuffled.csv"
    lines = [",".join(PIXELS[i] for i in order)]
    lines += [",".join(str(int(v)) for v in row[order]) for row in trained.rows[:7]]
    shuffled.write_text("\n".join(lines) + "\n")
    scored = _scored(trained, NAME, shuffled, "shuffled.csv")
    np.testing.assert_allclose(scored, _logits(trained, trained.rows[:7]), rtol=1e-5, atol=1e-5)


def test_a_reshaped_input_without_its_columns_is_told_to_rename_them(
    trained: Trained,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same file published by `aiaas publish` (no record of its columns): the refusal
    says which columns it reads, and not to publish with --features (refused for it)."""
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    store = trained.store
    model = store.root / "models" / NAME / "versions" / "1" / "model.onnx"
    argv = ["publish", str(model), "--name", "bare", "--labels", "0,1,2"]
    assert main(["--store", store.uri, *argv]) == 0
    data = tmp_path / "b.csv"
    data.write_text(",".join(PIXELS) + "\n" + ",".join(["1"] * 64) + "\n")
    capsys.readouterr()
    assert main(["--store", store.uri, "batch", "bare", str(data)]) == 1
    err = capsys.readouterr().err
    assert (
        "the header lacks column(s) x_0, x_1, x_2, x_3, x_4, x_5 and 58 more; model bare:1 "
        "reads x: x_0, x_1, x_2, x_3, x_4, x_5 and 58 more (its input 'x' is [-1, 1, 8, 8], "
        "read row-major from columns x_0 ... x_63: rename the header's columns it reads so, "
        "in order)"
    ) in err
    assert "--features" not in err
