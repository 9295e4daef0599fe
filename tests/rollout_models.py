"""Candidate versions a rollout must catch, published into a registry for the rollout tests:
one onnxruntime cannot load, one that answers NaN, one that disagrees with the baseline on a
chosen share of rows, a healthy one (the baseline's own weights), and two that answer as the
baseline does: one slow to load (healthy: a rollout must not judge it on its load) and one
slow to answer (a rollout's p99 limit must catch it)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.cache import sha256_file
from functions.runtime.manifest import ModelManifest
from functions.runtime.registry import Registry
from functions.runtime.rollout.record import RolloutBook, RolloutRecord
from tests import onnx_factory

LABELS = ("a", "b", "c")
BASELINE_SEED = 1
OTHER_SEED = 5  # another linear classifier: disagrees with the baseline on some rows


def publish(registry: Registry, workdir: Path, name: str, version: str, kind: str) -> None:
    """Publish `name:version` as `kind`: healthy, other, nan, broken, slow-load, slow-run or
    busy."""
    path = workdir / f"{name}-{version}-{kind}.onnx"
    if kind == "healthy":
        onnx_factory.linear_classifier(path, seed=BASELINE_SEED)
    elif kind == "other":
        onnx_factory.linear_classifier(path, seed=OTHER_SEED)
    elif kind == "nan":
        onnx_factory.linear_classifier(path, seed=BASELINE_SEED, bias=float("nan"))
    elif kind == "broken":
        _unloadable(path)
    elif kind in SLOW_SIZES:
        _slow(path, kind)
    else:
        raise ValueError(kind)
    registry.publish(_manifest(workdir, path, name, version), path)


def baseline_and_candidate(registry: Registry, workdir: Path, name: str, alias: str) -> Registry:
    """`name:1` and `name:2`, both healthy, `alias` on 1: a rollout of 2 with nothing to catch."""
    for version in ("1", "2"):
        publish(registry, workdir, name, version, "healthy")
    registry.set_alias(name, alias, "1")
    return registry


def _manifest(workdir: Path, path: Path, name: str, version: str) -> ModelManifest:
    """The manifest `aiaas publish` writes for a linear classifier, for `path`'s bytes."""
    shape = onnx_factory.linear_classifier(workdir / "signature.onnx", seed=BASELINE_SEED)
    manifest = onnx_factory.manifest_for(shape, name, version, labels=LABELS)
    file = replace(manifest.file, sha256=sha256_file(path), size=path.stat().st_size)
    return replace(manifest, file=file)


def _unloadable(path: Path) -> None:
    """A valid ONNX file whose one node is an operator no runtime implements."""
    graph = helper.make_graph(
        [helper.make_node("Boom", ["x"], ["logits"], domain="example.rollout")],
        "unloadable",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("example.rollout", 1)],
    )
    model.ir_version = 8
    onnx.save(model, path)


def rows_disagreeing(share: float, count: int, seed: int = 3) -> list[list[float]]:
    """`count` rows on which the "other" candidate's label differs from the baseline's on
    exactly `share` of them (interleaved), computed here with numpy from the same weights."""
    rng = np.random.default_rng(BASELINE_SEED)
    w_base = rng.normal(size=(4, 3)).astype(np.float32)
    w_other = np.random.default_rng(OTHER_SEED).normal(size=(4, 3)).astype(np.float32)
    pool = np.random.default_rng(seed).normal(size=(count * 20, 4)).astype(np.float32)
    differs = (pool @ w_base).argmax(1) != (pool @ w_other).argmax(1)
    same, other = pool[~differs], pool[differs]
    wanted = round(share * count)
    assert len(other) >= wanted and len(same) >= count - wanted, "widen the pool"
    rows = [*other[:wanted].tolist(), *same[: count - wanted].tolist()]
    order = np.random.default_rng(seed).permutation(count)
    return [rows[i] for i in order]


# (side, links) of the chain each slow kind computes.
SLOW_SIZES = {"slow-load": (1024, 36), "slow-run": (512, 150), "busy": (128, 8)}


def _slow(path: Path, kind: str) -> None:
    """The baseline's logits plus 0 x a chain of tanh(M @ C): on constants only for
    "slow-load" (onnxruntime folds them when it makes the session: ~0.7-1.4 s here, then answers
    in microseconds), on the input for "slow-run" (~0.2-0.5 s an answer, every time) and "busy"
    (~1.5 ms an answer)."""
    side, links = SLOW_SIZES[kind]
    rng = np.random.default_rng(BASELINE_SEED)
    consts = {
        "W": rng.normal(size=(4, 3)).astype(np.float32),
        "B": np.zeros(3, np.float32),
        "C": (np.random.default_rng(7).normal(size=(side, side)) / np.sqrt(side)).astype(
            np.float32
        ),
        "S": np.array([side, side], np.int64),
        "Z": np.zeros((), np.float32),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "B"], ["lin"]),
    ]
    if kind == "slow-load":
        first = "C"
    else:  # the input, spread over a side x side matrix: nothing to fold
        nodes += [
            helper.make_node("ReduceSum", ["x"], ["xs"], keepdims=0),
            helper.make_node("Expand", ["xs", "S"], ["e"]),
        ]
        first = "e"
    previous = first
    for i in range(links):  # tanh keeps it finite: 0 x inf would be a NaN
        nodes.append(helper.make_node("MatMul", [previous, "C"], [f"m{i}"]))
        nodes.append(helper.make_node("Tanh", [f"m{i}"], [f"t{i}"]))
        previous = f"t{i}"
    nodes += [
        helper.make_node("ReduceSum", [previous], ["s"], keepdims=0),
        helper.make_node("Mul", ["s", "Z"], ["zero"]),
        helper.make_node("Add", ["lin", "zero"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        kind,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def driver_stopped(registry: Registry, model: str, alias: str, seconds: float = 3600) -> None:
    """Its rollout's driver went quiet `seconds` ago (killed): its last check and log entry are
    moved that far into the past, as waiting would, so `aiaas rollout resume` may take it over."""

    def older(record: RolloutRecord | None) -> RolloutRecord | None:
        assert record is not None
        doc = record.to_dict()
        for entry in [*doc["log"][-1:], doc.get("last_check") or {}]:
            if "at" in entry:
                entry["at"] = float(entry["at"]) - seconds
        return RolloutRecord.from_dict(doc)

    RolloutBook(registry.store).update(model, alias, older)
