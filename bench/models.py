"""Benchmark models built in-process, so a bench run needs no training step."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np


def mlp_onnx(path: Path, sizes: tuple[int, ...] = (64, 256, 256, 10), seed: int = 0) -> Path:
    """The issue's reference model: MLP 64->256->256->10 (Gemm + Relu), float32, dynamic batch."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    init, nodes, prev = [], [], "x"
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        w = (rng.normal(size=(fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        init += [
            numpy_helper.from_array(w, f"W{i}"),
            numpy_helper.from_array(np.zeros(fan_out, np.float32), f"B{i}"),
        ]
        out = "logits" if i == len(sizes) - 2 else f"h{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"B{i}"], [out]))
        if out != "logits":
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"]))
            out = f"r{i}"
        prev = out
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", sizes[0]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", sizes[-1]])],
        initializer=init,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="bench"
    )
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def publish_classifier(
    store_dir: Path, name: str, path: Path, labels: tuple[str, ...] | None = None
) -> None:
    """Publish `path` as `name:1` @production with a plain classifier manifest (idempotent).

    The first output holds the class scores; labels default to "0", "1", ...
    """
    from functions.runtime.introspect import read_signature
    from functions.runtime.manifest import ModelManifest, Postprocessing
    from functions.runtime.registry import Registry
    from functions.runtime.store import LocalStore

    registry = Registry(LocalStore(store_dir))
    if registry.store.exists(f"models/{name}/versions/1/manifest.json"):
        return
    sig = read_signature(path)
    classes = sig.outputs[0].shape[-1]
    manifest = ModelManifest(
        name=name,
        version="1",
        task="classification",
        inputs=sig.inputs,
        outputs=sig.outputs,
        file=sig.file,
        labels=labels or tuple(str(i) for i in range(classes)),
        postprocessing=Postprocessing(scores_output=sig.outputs[0].name),
    )
    registry.publish(manifest, path)
    registry.set_alias(name, "production", "1")


def publish_mlp(store_dir: Path, name: str = "bench-mlp") -> Path:
    """Publish the MLP as `name:1` @production into a local store; returns the ONNX path."""
    path = mlp_onnx(store_dir.parent / "mlp.onnx")
    publish_classifier(store_dir, name, path)
    return path
