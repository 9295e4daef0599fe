"""`aiaas publish --quantize`'s checks of the variant before it is published, on real models:
a torch TransformerEncoder whose fp16 variant crashes onnxruntime, and scikit-learn's
StandardScaler + PCA + MLP pipeline.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.infra.test_publish_quantize import published, refused

ROOT = Path(__file__).resolve().parents[2]


def _digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    return x.astype(np.float32), y


def test_fp16_variant_that_crashes_onnxruntime_is_refused_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    """onnxruntime 1.32 dies (SIGSEGV) creating a session for this graph's fp16 variant: the
    CLI ended with exit 139, no word, and a copy of the model left in the temp folder."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)

    class Encoder(torch.nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(200, 128)
            self.pos = torch.nn.Embedding(32, 128)
            layer = torch.nn.TransformerEncoderLayer(128, 4, 512, batch_first=True, dropout=0.0)
            self.enc = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.fc = torch.nn.Linear(128, 3)

        def forward(self, ids: object, mask: object) -> object:
            p = torch.arange(ids.shape[1]).unsqueeze(0)  # type: ignore[attr-defined]
            h = self.enc(self.emb(ids) + self.pos(p), src_key_padding_mask=(mask == 0))
            return self.fc(h[:, 0])

    model, path = Encoder().eval(), tmp_path / "tf.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.randint(0, 200, (2, 32)), torch.ones(2, 32, dtype=torch.long)),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={"input_ids": {0: "n"}, "attention_mask": {0: "n"}, "logits": {0: "n"}},
            dynamo=False,
        )
    temp, store = tmp_path / "tmp", tmp_path / "store"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(ROOT)}
    argv = ["publish", str(path), "--name", "tf", "--labels", "a,b,c", "--quantize", "fp16"]
    done = subprocess.run(
        [sys.executable, "-m", "infra.cli.main", "--store", str(store), *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    if done.returncode == 0:
        pytest.skip("this onnxruntime loads the fp16 variant of this graph")
    assert done.returncode == 1, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "onnxruntime crashed (SIGSEGV)" in lines[0], done.stderr
    assert "--quantize int8" in lines[0]
    assert list(temp.iterdir()) == [], "the publish's private folder must be removed"
    assert not store.exists() or not Registry(LocalStore(store)).models()


def test_scaler_pca_mlp_pipeline_gets_int8_and_a_clear_fp16_refusal(tmp_path: Path) -> None:
    """The int8 quantizer refused this pipeline ("Unable to find data type", the Scaler's output
    has no inferred type) and fp16's refusal was onnxruntime's, with the private temp path."""
    x, y = _digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = make_pipeline(
            StandardScaler(), PCA(32), MLPClassifier((256, 128), max_iter=60, random_state=0)
        ).fit(x[:1200], y[:1200])
    path = tmp_path / "pcamlp.onnx"
    path.write_bytes(to_onnx(fitted, x[:1]).SerializeToString())
    data = tmp_path / "test.npz"
    np.savez(data, x=x[1200:], y=y[1200:])

    store = LocalStore(tmp_path / "store")
    record = published(store, path, "pca", "--quantize", "int8", "--data", str(data))
    assert record["quantized_bytes"] < record["source_bytes"] * 0.5
    assert record["evaluation"]["before"] - record["evaluation"]["after"] <= 0.01

    said = refused(tmp_path, path, "--quantize", "fp16")
    assert said.startswith("--quantize fp16 cannot convert this scikit-learn pipeline"), said
    assert "--quantize int8" in said and "aiaas-publish" not in said and "\n" not in said
