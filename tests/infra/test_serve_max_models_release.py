"""What a model function retired under `AIAAS_SERVE_MAX_MODELS` leaves running (review_rev2).

A retired function's module goes; what it started must go with it. Its shadow replay process
(functions/shadow/channel.py) lived on, held by the channel's reader thread, and each call
after a retire spawned another beside it: with a bound meant to cap memory, one interpreter
and its sessions more per reload, until the server stopped.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.local.functions import function_instances
from infra.local.gateway import Gateway, GatewayRequest
from infra.local.stack import stack_functions
from tests import onnx_factory

ROW = [[0.5, -1.0, 2.0, 0.25]]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """m0 (versions 1 and 2, `prod` on 1 replaying every request to 2) and m1."""
    registry = Registry(LocalStore(tmp_path / "store"))
    for name, versions in (("m0", ("1", "2")), ("m1", ("1",))):
        for seed, version in enumerate(versions):
            path = onnx_factory.linear_classifier(tmp_path / f"{name}-{version}.onnx", seed=seed)
            manifest = onnx_factory.manifest_for(path, name, version, labels=("a", "b", "c"))
            registry.publish(manifest, path)
        registry.set_alias(name, "prod", "1")
    registry.set_shadow("m0", "prod", "2", 1.0)
    return tmp_path


def test_a_retired_models_shadow_replay_process_ends(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIAAS_SERVE_MAX_MODELS", "1")
    env = {
        "AIAAS_STORE": str(root / "store"),
        "AIAAS_CACHE_DIR": str(root / "cache"),
        "AIAAS_SHADOW_SINK": "process",
    }
    gateway = Gateway(function_instances(stack_functions(["m0", "m1"], "@prod"), env))

    def call(name: str) -> int:
        body = json.dumps({"inputs": ROW}).encode()
        headers = [("content-type", "application/json")]
        request = GatewayRequest("POST", f"/models/{name}/predict", "", headers, body)
        return gateway.handle(request).status

    assert call("m0") == 200
    sink = gateway.functions["Predictm0"].handler.__globals__["SERVICE"].shadow.sink
    assert sink.drain(20.0)  # the copy replayed: its process is up
    replay = sink.channel.process
    try:
        assert call("m1") == 200  # m0 retired
        assert not gateway.functions["Predictm0"].warm
        replay.wait(timeout=10)  # it ends with the function that started it
    finally:
        with contextlib.suppress(OSError):
            replay.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            replay.wait(timeout=5)
