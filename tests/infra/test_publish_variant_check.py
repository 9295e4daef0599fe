"""`aiaas publish --quantize`'s checks of the variant before it is published, on real models:
a torch TransformerEncoder whose fp16 variant crashes onnxruntime, scikit-learn's StandardScaler
+ PCA + MLP pipeline, an MLP whose int8 variant loses 8 points of accuracy, and a CNN whose int8
variant runs slower than its float model.
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
from infra.cli.publish_variant_check import MAX_DROP, latency_note
from tests.infra.test_publish_quantize import publish, published, refused
from tests.sklearn_models import one_blas_thread

ROOT = Path(__file__).resolve().parents[2]


def _digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torch TransformerEncoder's ONNX export, whose fp16 form onnxruntime 1.32 crashes on."""
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

    model, path = Encoder().eval(), tmp_path_factory.mktemp("encoder") / "tf.onnx"
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
    return path


def _publish_cli(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """`aiaas publish ...` in its own process (a crash there is not the test's), TMPDIR its own."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "infra.cli.main", "--store", str(tmp_path / "store"), *argv],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip


def test_fp16_variant_that_crashes_onnxruntime_is_refused_and_leaves_nothing(
    tmp_path: Path, encoder: Path
) -> None:
    """onnxruntime 1.32 dies (SIGSEGV) creating a session for this graph's fp16 variant: the
    CLI ended with exit 139, no word, and a copy of the model left in the temp folder."""
    path = encoder
    temp, store = tmp_path / "tmp", tmp_path / "store"
    argv = ["publish", str(path), "--name", "tf", "--labels", "a,b,c", "--quantize", "fp16"]
    done = _publish_cli(tmp_path, *argv)
    if done.returncode == 0:
        pytest.skip("this onnxruntime loads the fp16 variant of this graph")
    assert done.returncode == 1, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "onnxruntime crashed (SIGSEGV)" in lines[0], done.stderr
    assert "--quantize int8" in lines[0]
    assert list(temp.iterdir()) == [], "the publish's private folder must be removed"
    assert not store.exists() or not Registry(LocalStore(store)).models()


def test_a_float16_model_that_crashes_onnxruntime_is_refused_in_a_line(
    tmp_path: Path, encoder: Path
) -> None:
    """The user's own fp16 model (here that export converted as --quantize fp16 converts it):
    publish's own load crashed the CLI (exit 139, no word), before any --quantize."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    half = tmp_path / "tf16.onnx"
    onnx.save(convert_float_to_float16(onnx.load(str(encoder)), keep_io_types=True), str(half))
    done = _publish_cli(tmp_path, "publish", str(half), "--name", "tf16", "--labels", "a,b,c")
    if done.returncode == 0:
        pytest.skip("this onnxruntime loads this float16 graph")
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stderr == (
        "aiaas publish: error: onnxruntime crashed (SIGSEGV) loading tf16.onnx, a model of "
        "float16 weights, so serving would too; publish its float32 export (--quantize fp16 "
        "then makes a float16 variant, checked the same way), or try a newer onnxruntime\n"
    )
    assert (
        not (tmp_path / "store").exists() or not Registry(LocalStore(tmp_path / "store")).models()
    )


def test_scaler_pca_mlp_pipeline_gets_int8_and_a_clear_fp16_refusal(tmp_path: Path) -> None:
    """The int8 quantizer refused this pipeline ("Unable to find data type", the Scaler's output
    has no inferred type) and fp16's refusal was onnxruntime's, with the private temp path."""
    x, y = _digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with one_blas_thread():
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
    evaluation = record["evaluation"]
    assert evaluation["drop_points"] <= MAX_DROP
    assert evaluation["max_drop_points"] == MAX_DROP

    said = refused(tmp_path, path, "--quantize", "fp16")
    assert said.startswith("--quantize fp16 cannot convert this scikit-learn pipeline"), said
    assert "--quantize int8" in said and "aiaas-publish" not in said and "\n" not in said


@pytest.fixture(scope="module")
def collapsing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An MLP on digits plus one large-valued column (a year-like 2000): int8's per-request
    activation scale drops its accuracy from 0.85 to 0.76."""
    root = tmp_path_factory.mktemp("collapse")
    x, y = _digits()
    x = np.hstack([x, (2000 + np.random.RandomState(0).rand(len(x), 1)).astype(np.float32)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with one_blas_thread():
            fitted = MLPClassifier((256, 128), max_iter=300, random_state=0).fit(x[:1200], y[:1200])
    (root / "m.onnx").write_bytes(to_onnx(fitted, x[:1]).SerializeToString())
    np.savez(root / "test.npz", x=x[1200:], y=y[1200:])
    return root / "m.onnx", root / "test.npz"


def test_a_drop_over_a_point_is_refused_unless_max_drop_allows_it(
    collapsing: tuple[Path, Path], tmp_path: Path
) -> None:
    """It was published (and aliased) with only the figures printed; training refuses it."""
    model, data = collapsing
    said = refused(tmp_path, model, "--quantize", "int8", "--data", str(data), "--alias", "prod")
    assert said.startswith("--quantize int8: the metric dropped more than allowed: accuracy fell")
    assert "at most 1 allowed" in said and "--max-drop POINTS" in said and "\n" not in said

    store = LocalStore(tmp_path / "store")
    argv = ("--quantize", "int8", "--data", str(data), "--max-drop", "30")
    evaluation = published(store, model, "loose", *argv)["evaluation"]
    assert evaluation["max_drop_points"] == 30
    expected = (evaluation["before"] - evaluation["after"]) * 100
    assert evaluation["drop_points"] == pytest.approx(expected, abs=1e-3)
    assert evaluation["drop_points"] > MAX_DROP

    code, _, err = publish(store, model, "nodata", "--quantize", "int8", "--max-drop", "5")
    assert code == 1 and "--max-drop goes with --quantize and --data" in err


def test_without_data_the_variant_is_compared_on_made_up_rows(
    collapsing: tuple[Path, Path], tmp_path: Path
) -> None:
    """Nothing compared the variant's answers with the source's without --data."""
    store = LocalStore(tmp_path / "store")
    record = published(store, collapsing[0], "probe", "--quantize", "int8")
    assert record["probe"]["rows"] == 64
    assert 0 <= record["probe"]["changed"] <= 64


def test_a_slower_int8_cnn_is_said_and_recorded(tmp_path: Path) -> None:
    """int8 turns Conv into ConvInteger, several times slower on onnxruntime's CPU: training
    refuses such a variant for speed, publish published it without a word."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * 8 * 8, 10),
    ).eval()
    path = tmp_path / "cnn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            torch.randn(1, 1, 8, 8),
            str(path),
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}},
            dynamo=False,
        )
    store = LocalStore(tmp_path / "store")
    labels = ",".join(map(str, range(10)))
    code, out, err = publish(store, path, "cnn", "--labels", labels, "--quantize", "int8")
    assert code == 0, err
    timed = Registry(store).manifest("cnn", "1").extras["quantization"]["latency"]
    assert timed["slowdown"] > 1.1, timed  # measured 3.6x here
    warned = [line for line in out.splitlines() if "slower than the source" in line]
    assert len(warned) == 1 and warned[0].strip().startswith("warning: the int8 variant"), out


def test_the_fp16_slowdown_warning_speaks_of_fp16() -> None:
    """A 48 MB three-matrix model's fp16 variant ran a row 1.22x slower: its warning named
    training's int8 rule, which says nothing of fp16. (No small model is reliably slower in
    fp16 on every CPU, so the numbers are that publish's.)"""
    timed = {"slowdown": 1.22, "variant_row_us": 1451.0, "source_row_us": 1189.0}
    fp16 = latency_note("fp16", timed)
    assert fp16 == (
        "warning: the fp16 variant runs a row 1.22x slower than the source on this CPU "
        "(1451 us against 1189 us): it is smaller, not faster"
    )
    int8 = latency_note("int8", timed)
    assert int8 is not None and "aiaas train refuses an int8 model over 1.1x slower" in int8
