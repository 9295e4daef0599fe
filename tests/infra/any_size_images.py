"""A user's CNN of any image size, as torch.onnx.export writes it, published with `aiaas
publish`: shared by the batch and explain tests of such models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main

LABELS = "cat,dog,bird"
# name -> the dynamic_axes of its export: H and W dynamic, with a dynamic batch or a batch of 1
# fixed in the graph (the export without a batch axis named), and a fully convolutional one
# whose output is a map the size of its input.
EXPORTS: dict[str, dict[str, dict[int, str]]] = {
    "anysize": {"x": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n"}},
    "anysize1": {"x": {2: "h", 3: "w"}},
    "segment": {"x": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h", 3: "w"}},
}


def export(root: Path) -> dict[str, Path]:
    """The ONNX files of EXPORTS: conv 3->4, ReLU, then a global average pool and a linear
    layer to 3 logits (a 1x1 conv to 3 maps for "segment")."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)

    class Net(torch.nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self, pooled: bool) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.head = torch.nn.Linear(4, 3) if pooled else torch.nn.Conv2d(4, 3, 1)
            self.pooled = pooled

        def forward(self, x: Any) -> Any:
            features = torch.relu(self.conv(x))
            return self.head(features.mean(dim=(2, 3))) if self.pooled else self.head(features)

    paths = {}
    for name, axes in EXPORTS.items():
        batch = 2 if 0 in axes["x"] else 1
        paths[name] = root / f"{name}.onnx"
        torch.onnx.export(
            Net(pooled=name != "segment").eval(),
            (torch.zeros(batch, 3, 8, 8),),
            paths[name],
            input_names=["x"],
            output_names=["logits"],
            dynamic_axes=axes,
            dynamo=False,
        )
    return paths


def publish(root: Path) -> LocalStore:
    """A store with every export published under its name (classifiers labelled)."""
    store = LocalStore(root / "store")
    for name, path in export(root).items():
        labels = ["--labels", LABELS] if name != "segment" else []
        assert main(["--store", store.uri, "publish", str(path), "--name", name, *labels]) == 0
    return store


def reference(path: Path, image: np.ndarray) -> np.ndarray:
    """The model's output for one image, from onnxruntime directly."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": image[None].astype(np.float32)})[0][0])


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return np.asarray(shifted / shifted.sum())


def predict_services(root: Path) -> dict[str, PredictService]:
    """One predict function per published model (`publish`), kept as a warm container keeps it."""
    store = LocalStore(root / "store")
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    return {m: service_from_env({"AIAAS_MODEL": m}, pool) for m in ("anysize", "anysize1")}
