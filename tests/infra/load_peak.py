"""`python -m tests.infra.load_peak STORE NAME CACHE`: load NAME:1 as serving does (the model
pool, from the cache directory, its files fetched first) in this fresh process, onnxruntime
started beforehand by a tiny session (the runtime's share, not the model's), answer one row,
and print how far that raised the process's peak (VmHWM) above its resident size before, then
how far the load alone raised its resident size (VmRSS: what the version keeps, before a request's
own buffers)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

from functions.runtime.cache import ArtifactCache
from functions.runtime.model import session_options
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import LocalStore


def status(key: str) -> int:
    found = re.search(rf"{key}:\s+(\d+) kB", Path("/proc/self/status").read_text())
    assert found is not None, key
    return int(found.group(1)) * 1024


def start_onnxruntime() -> None:
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in "ab"]
    graph = helper.make_graph([helper.make_node("Relu", ["a"], ["b"])], "tiny", io[:1], io[1:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = ort.InferenceSession(
        model.SerializeToString(), session_options(), providers=["CPUExecutionProvider"]
    )
    session.run(None, {"a": np.ones(1, np.float32)})


def main(store: str, name: str, cache: str) -> None:
    registry = Registry(LocalStore(Path(store)))
    manifest = registry.manifest(name, "1")
    settings = RuntimeSettings.from_env({"AIAAS_MODEL_LOAD": "disk"})
    pool = ModelPool(registry, ArtifactCache(registry.store, Path(cache)), settings=settings)
    pool.cache.source(manifest)  # fetched: the copy's buffers are not the load's
    start_onnxruntime()
    before = status("VmRSS")
    model = pool.load(manifest)
    resident = status("VmRSS") - before
    spec = manifest.inputs[0]
    if spec.dtype == "int64":  # token ids
        model.predict({spec.name: np.ones((1, 8), np.int64)})
    else:
        model.predict({spec.name: np.ones((1, spec.shape[1]), np.float32)})
    print(status("VmHWM") - before, resident)


if __name__ == "__main__":
    main(*sys.argv[1:4])
