"""A sequence model whose export declares a fixed per-step output it answers for any length.

torch.onnx.export(dynamo=True) of a GRU over steps of any length declared its per-step output
`seq` [batch, 5, 6] (the example's 5 steps) and answers [batch, steps, 6]. Publish kept
[-1, 5, 6] (and OIP metadata advertised it); `aiaas batch` and `aiaas compare` then refused
every file of it, advising to publish again, which changed nothing (publish read answered
shapes of ai.onnx.ml graphs only); for JSONL the refusal showed the answered shape as [].
Publish now runs such a graph on made-up rows and marks the dimension it answers otherwise
dynamic; a manifest published before still gets a refusal, with a shape and advice that work.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.batch_support import run
from tests.functions.test_predict_events import body_of, http_event

FEATURES, HIDDEN = 4, 6


def per_step(path: Path, seed: int = 0) -> Path:
    """seq = x @ W [batch, steps, 6], declared [batch, 5, 6]; logits = mean of seq @ V."""
    rng = np.random.default_rng(seed)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["seq"]),
            helper.make_node("ReduceMean", ["seq", "axes"], ["pooled"], keepdims=0),
            helper.make_node("MatMul", ["pooled", "V"], ["logits"]),
        ],
        "per_step",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", FEATURES])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("seq", TensorProto.FLOAT, ["batch", 5, HIDDEN]),
        ],
        initializer=[
            numpy_helper.from_array(rng.normal(size=(FEATURES, HIDDEN)).astype(np.float32), "W"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
            numpy_helper.from_array(rng.normal(size=(HIDDEN, 3)).astype(np.float32), "V"),
        ],
    )
    return onnx_factory.save(graph, path, opset=18)  # ReduceMean/Squeeze take axes as inputs


def published(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[LocalStore, Path]:
    """Two versions of `per_step` published as `two` with the real CLI."""
    store = LocalStore(tmp_path / "store")
    for seed in (1, 2):
        path = per_step(tmp_path / f"two{seed}.onnx", seed)
        argv = ["--store", store.uri, "publish", str(path), "--name", "two", "--labels", "a,b,c"]
        assert main(argv) == 0, capsys.readouterr().err
    return store, tmp_path / "two2.onnx"


def sequences(rng: np.random.Generator, lengths: tuple[int, ...]) -> list[np.ndarray]:
    return [rng.normal(size=(steps, FEATURES)).astype(np.float32) for steps in lengths]


def test_publish_reads_the_answered_shape_and_batch_and_compare_score_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, model = published(tmp_path, capsys)
    assert Registry(store).manifest("two", "2").outputs[1].shape == (-1, -1, HIDDEN)
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "two"}, pool)
    metadata = body_of(service.handle(http_event("GET", "/v2/models/two")))
    assert {o["name"]: o["shape"] for o in metadata["outputs"]}["seq"] == [-1, -1, HIDDEN]

    session = ort.InferenceSession(str(model))
    x = np.random.default_rng(3).normal(size=(5, 7, FEATURES)).astype(np.float32)
    np.save(tmp_path / "rows.npy", x)
    assert main(["--store", store.uri, "batch", "two", str(tmp_path / "rows.npy")]) == 0
    written = np.load(store.root / "batch/two/output/rows.npz")
    logits, seq = session.run(None, {"x": x})
    np.testing.assert_allclose(written["seq"], seq, atol=1e-6)
    np.testing.assert_allclose(written["logits"], logits, atol=1e-6)

    rows = sequences(np.random.default_rng(4), (3, 6, 6, 1))
    lines = "".join(json.dumps({"x": row.tolist()}) + "\n" for row in rows)
    (tmp_path / "rows.jsonl").write_text(lines)
    assert main(["--store", store.uri, "batch", "two", str(tmp_path / "rows.jsonl")]) == 0
    out = (store.root / "batch/two/output/rows.jsonl").read_text().splitlines()
    for line, row in zip(out, rows, strict=True):
        got = np.asarray(json.loads(line)["pred_seq"], dtype=np.float32)
        np.testing.assert_allclose(got, session.run(None, {"x": row[None]})[1][0], atol=1e-6)

    argv = [
        "--store",
        store.uri,
        "compare",
        "two",
        "1",
        "2",
        "--data",
        str(tmp_path / "rows.jsonl"),
    ]
    assert main(argv) == 0, capsys.readouterr().err


def test_a_manifest_with_the_declared_shape_is_refused_with_the_answered_one_and_what_works(
    tmp_path: Path,
) -> None:
    """As a model published before publish read such shapes: the refusal named [] for JSONL
    and advised publishing again as the only fix."""
    store = LocalStore(tmp_path / "store")
    path = per_step(tmp_path / "two.onnx")
    manifest = onnx_factory.manifest_for(path, "two", "1", labels=("a", "b", "c"))
    seq = replace(manifest.outputs[1], shape=(-1, 5, HIDDEN))
    Registry(store).publish(replace(manifest, outputs=(manifest.outputs[0], seq)), path)
    rows = sequences(np.random.default_rng(5), (3, 6))
    lines = "".join(json.dumps({"x": row.tolist()}) + "\n" for row in rows)
    store.put_bytes("batch/two/input/rows.jsonl", lines.encode())
    summary = run(store, tmp_path, "batch/two/input/rows.jsonl")
    assert summary["status"] == "failed"
    assert "output 'seq' answers [3, 6] a row where its manifest says [5, 6]" in summary["error"]
    assert "mark 'seq' dim[1] dynamic in the graph" in summary["error"]
