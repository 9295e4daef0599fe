"""The three benchmark models (the demo's MLP, CNN and text Transformer) and one request for each.

A model comes from `aiaas train training/specs/<spec>.yaml --publish` when such a spec exists
(trained once into a cached store under `.aiaas/bench/trained/`, reused afterwards), else from
a graph of the same shape built with onnx.helper. Either way the ONNX file is re-published
under `bench-<key>` into the benchmark's own store with a plain manifest, so every server gets
the same raw tensors.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.compare.onnx_models import cnn_onnx, transformer_onnx
from bench.models import mlp_onnx, publish_classifier

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "training" / "specs"
CACHE = ROOT / ".aiaas" / "bench"
SEQUENCE_LENGTH = 32  # for a dynamic token axis
TOKEN_IDS = 10  # sample token ids stay below this, valid for any vocabulary


@dataclass(frozen=True)
class WorkloadKind:
    """How to get one of the demo's models: the spec to train, else the graph to build."""

    key: str
    title: str
    spec_glob: str
    build: Callable[[Path], Path]


KINDS = {
    "mlp": WorkloadKind("mlp", "MLP 64-256-256-10", "*mlp*.yaml", mlp_onnx),
    "cnn": WorkloadKind("cnn", "CNN 1x8x8 digits", "*cnn*.yaml", cnn_onnx),
    "transformer": WorkloadKind(
        "transformer", "Transformer, int64 tokens", "*transformer*.yaml", transformer_onnx
    ),
}


@dataclass(frozen=True)
class Workload:
    """One model ready to serve: its store name, ONNX file, one request row and the answer."""

    key: str
    title: str
    model: str
    onnx: Path
    source: str
    input_name: str
    row: np.ndarray
    expected: np.ndarray

    @property
    def datatype(self) -> str:
        return "INT64" if self.row.dtype == np.int64 else "FP32"


def _trained(kind: WorkloadKind) -> tuple[Path, str, str] | None:
    """The spec's trained ONNX file, training it once into a cached store; None when no spec."""
    specs = sorted(SPECS.glob(kind.spec_glob)) if SPECS.is_dir() else []
    if not specs:
        return None
    spec = specs[0]
    # Keyed by the spec's content: an edited spec trains afresh, an unchanged one never again.
    digest = hashlib.sha256(spec.read_bytes()).hexdigest()[:12]
    store = CACHE / "trained" / f"{spec.stem}-{digest}" / "store"
    if not any(store.glob("models/*/versions/*/model.onnx")):
        print(f"  training {spec.relative_to(ROOT)} once into {store.relative_to(ROOT)} ...")
        env = {**os.environ, "AIAAS_STORE": str(store)}
        command = [sys.executable, "-m", "infra.cli.main", "train", str(spec), "--publish"]
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            print(f"  {spec.name}: training failed ({' '.join(tail)}); using the built graph")
            return None
    newest = max(
        store.glob("models/*/versions/*/model.onnx"), key=lambda p: p.stat().st_mtime, default=None
    )
    return (newest, f"trained: {spec.relative_to(ROOT)}", spec.stem) if newest else None


def precision(path: Path) -> str:
    """'int8' for a quantized graph (the demo specs quantize), else 'fp32'."""
    import onnx

    ops = {node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node}
    return (
        "int8" if ops & {"MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv"} else "fp32"
    )


def sample_row(path: Path, seed: int = 1) -> tuple[str, np.ndarray, np.ndarray]:
    """Input name, a one-row input built from the graph's signature, and raw onnxruntime's answer."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    graph_input = session.get_inputs()[0]
    dims = [d if isinstance(d, int) and d > 0 else SEQUENCE_LENGTH for d in graph_input.shape]
    dims[0] = 1
    rng = np.random.default_rng(seed)
    if "int" in graph_input.type:
        row = rng.integers(0, TOKEN_IDS, size=dims).astype(np.int64)
    else:
        row = rng.normal(size=dims).astype(np.float32)
    return graph_input.name, row, session.run(None, {graph_input.name: row})[0]


def publish(store_dir: Path, name: str, path: Path) -> None:
    """Publish `path` as `name:1` @production with a plain classifier manifest (idempotent)."""
    publish_classifier(store_dir, name, path)


def prepare(keys: list[str], work: Path, *, train: bool = True) -> list[Workload]:
    """Each requested model as an ONNX file under `work`, published into `work/store`;
    `train=False`: the graph of the same shape built with onnx.helper, never a trained one."""
    workloads = []
    for key in keys:
        kind = KINDS[key]
        trained = _trained(kind) if train else None
        if trained is None:
            trained = (kind.build(work / f"{key}.onnx"), "built with onnx.helper", kind.title)
        path, source, title = trained
        name = f"bench-{key}"
        publish(work / "store", name, path)
        input_name, row, expected = sample_row(path)
        title = f"{title}, {precision(path)}"
        workloads.append(Workload(key, title, name, path, source, input_name, row, expected))
    return workloads
