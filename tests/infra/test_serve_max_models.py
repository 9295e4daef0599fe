"""`AIAAS_SERVE_MAX_MODELS`: how many models one `aiaas serve` worker keeps loaded.

Each model is a function instance of its own, bounded by its own memory as in Lambda; one serve
held them all, every one loaded at the start: 25 models of 20 MB took 3.2 GB before any
request (hunt_scale 1). With the bound the warm-up loads that many, and a call to another
model unloads the least recently called one, whose module and sessions are then freed.
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.local.functions import function_instances
from infra.local.gateway import Gateway, GatewayRequest
from infra.local.stack import stack_functions
from tests import onnx_factory
from tests.infra.test_serve import ServeProcess, start_serve

MODELS = [f"m{i}" for i in range(5)]
ROW = [[0.5, -1.0, 2.0, 0.25]]
LOADED = re.compile(r'"loaded (m\d):1 from ')
UNLOADED = re.compile(r"unloaded model (m\d) \(.* to load model m\d: ")  # by model name


def predicted(gateway: Gateway, name: str, rows: object) -> int:
    """The status of a simple JSON predict of `rows` to model `name`, through the gateway."""
    body = json.dumps({"inputs": rows}).encode()
    headers = [("content-type", "application/json")]
    return gateway.handle(
        GatewayRequest("POST", f"/models/{name}/predict", "", headers, body)
    ).status


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five published models, each a linear classifier of its own weights."""
    root = tmp_path_factory.mktemp("max_models")
    registry = Registry(LocalStore(root / "store"))
    for seed, name in enumerate(MODELS):
        path = onnx_factory.linear_classifier(root / f"{name}.onnx", seed=seed)
        registry.publish(onnx_factory.manifest_for(path, name, "1", labels=("a", "b", "c")), path)
    return root


def expected(root: Path, name: str) -> list[float]:
    session = ort.InferenceSession(str(root / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    return [float(v) for v in session.run(None, {"x": np.array(ROW, np.float32)})[0][0]]


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServeProcess]:
    env = {"AIAAS_SERVE_MAX_MODELS": "2", "POWERTOOLS_LOG_LEVEL": "INFO"}
    yield from start_serve(root / "store", env=env)


def events(server: ServeProcess) -> list[tuple[str, str]]:
    """("load" or "unload", model) in the order the log has them."""
    found = []
    for line in Path(server.log).read_text(errors="replace").splitlines():
        if (match := LOADED.search(line)) is not None:
            found.append(("load", match.group(1)))
        elif (match := UNLOADED.search(line)) is not None:
            found.append(("unload", match.group(1)))
    return found


def test_a_server_keeps_at_most_the_bound_of_models_loaded(
    server: ServeProcess, root: Path
) -> None:
    """The warm-up loaded all five (and a store of 400 kept 400); now two, each call of a
    third unloads the least recently called, and every answer is still the model's own."""
    time.sleep(2.0)  # the warm-up's second group starts 1 s after the models
    assert [kind for kind, _ in events(server)] == ["load", "load"]
    with httpx.Client(base_url=server.base, timeout=30) as client:
        for name in [*MODELS, *reversed(MODELS), "m0", "m0"]:
            answer = client.post(f"/models/{name}/predict", json={"inputs": ROW})
            assert answer.status_code == 200, answer.text
            logits = answer.json()["outputs"]["logits"][0]
            np.testing.assert_allclose(logits, expected(root, name), rtol=1e-5, atol=1e-6)
    loaded: set[str] = set()
    for kind, name in events(server):
        if kind == "load":
            loaded.add(name)
        else:
            loaded.remove(name)
        assert len(loaded) <= 2, events(server)
    assert loaded == {"m0", "m1"}  # the two called last


def test_a_bad_bound_is_refused_at_start(root: Path) -> None:
    server = ServeProcess(root / "store", env={"AIAAS_SERVE_MAX_MODELS": "lots"})
    try:
        assert server.process.wait(timeout=20) == 1
    finally:
        server.stop()  # before, it served with the setting unread
    assert "AIAAS_SERVE_MAX_MODELS must be a whole number, 0 or more; got 'lots'" in server.output()


def test_an_unloaded_model_is_freed(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its module, service and session go (nothing but the function held them), in process
    with the real handler: a bound that freed nothing would only add cold starts."""
    monkeypatch.setenv("AIAAS_SERVE_MAX_MODELS", "1")
    env = {"AIAAS_STORE": str(root / "store"), "AIAAS_CACHE_DIR": str(root / "cache")}
    gateway = Gateway(function_instances(stack_functions(MODELS[:2], ":1"), env))
    assert gateway.loaded.most == 1

    def call(name: str) -> int:
        return predicted(gateway, name, ROW)

    assert call("m0") == 200
    first = gateway.functions["Predictm0"]
    service = weakref.ref(first.handler.__globals__["SERVICE"])
    assert call("m1") == 200
    assert not first.warm
    deadline = time.monotonic() + 10  # its release() writes on a thread of its own, then goes
    while service() is not None and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.02)
    assert service() is None
    assert [f.warm for f in gateway.functions.values() if f.is_model] == [False, True]
    assert call("m0") == 200  # a cold start again


def test_the_banner_of_many_models_lists_twenty_and_counts_the_rest(tmp_path: Path) -> None:
    """A store of 401 models printed 401 lines of routes: the banner's first line, the
    address and whether a token is needed, scrolled off any terminal."""
    registry = Registry(LocalStore(tmp_path / "store"))
    path = onnx_factory.linear_classifier(tmp_path / "model.onnx")
    for i in range(23):
        registry.publish(onnx_factory.manifest_for(path, f"n{i:02d}", "1"), path)
    env = {"AIAAS_SERVE_MAX_MODELS": "1"}
    with contextlib.closing(start_serve(tmp_path / "store", env=env)) as servers:
        server = next(servers)
        banner = server.output().split("aiaas serve: http://", 1)[1].splitlines()[1:22]
        assert banner[0] == "  POST /models/n00/predict   POST /v2/models/n00/infer"
        assert banner[19] == "  POST /models/n19/predict   POST /v2/models/n19/infer"
        assert banner[20] == "  ... and 3 more model(s) (`aiaas models` lists them), routed alike"
