"""`aiaas serve` as a real subprocess on loopback: every route, auth, limits, aliases, discovery.

`ServeProcess` (also used by the load and tritonclient tests) starts the CLI on a free port,
waits for it with a bounded loop and always terminates it.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory, serve_logs
from tests.functions.test_predict_events import MODEL, publish_digits, reference_logits
from tests.s3server import free_port, listens, stop_process

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-token"
ALIAS_TTL = 0.5


class ServeProcess:
    """`python -m infra.cli.main --store STORE serve --port PORT ...` on loopback."""

    def __init__(
        self,
        store: Path,
        *args: str,
        env: Mapping[str, str] | None = None,
        preexec: Callable[[], None] | None = None,
        main: str = "infra.cli.main",  # another module that runs the CLI's main (tests' changes)
    ) -> None:
        self.store = store
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = store.parent / f"serve-{self.port}.log"
        command = [
            sys.executable,
            "-m",
            main,
            "--store",
            str(store),
            "serve",
            "--port",
            str(self.port),
            *args,
        ]
        full_env = {
            **os.environ,
            "AIAAS_CACHE_DIR": str(store.parent / "cache"),
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=full_env, stdout=out, stderr=out, preexec_fn=preexec
            )
        # Its log goes into the report of a test that fails meanwhile (tests/conftest.py).
        name = f"aiaas serve on port {self.port} (pid {self.process.pid})"
        serve_logs.started(
            serve_logs.Logged(name, lambda: self.process.poll() is None, self.output)
        )

    def wait_ready(self, headers: Mapping[str, str] | None = None, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"aiaas serve exited: {self.output()}")
            try:
                answer = httpx.get(f"{self.base}/v2/health/ready", headers=headers, timeout=2)
                # Another test's server may have bound the port between free_port() and this
                # one's start (which then exits: "already in use"): its 200 is not ours.
                if answer.status_code == 200 and self._listens():
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"aiaas serve not ready within {timeout} s: {self.output()}")

    def _listens(self) -> bool:
        """Whether the socket listening on the port is this server's."""
        return listens(self.process.pid, self.port)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        stop_process(self.process, grace=10)


def start_serve(
    store: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Iterator[ServeProcess]:
    """A started server for a fixture: yields it, terminates it whatever happens. Started
    again on another port if a process bound its port first (free_port() only saw it free)."""
    for attempt in range(3):
        server = ServeProcess(store, *args, env=env)
        try:
            server.wait_ready(headers)
            break
        except RuntimeError:
            server.stop()
            if attempt == 2 or "already in use" not in server.output():
                raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve")
    store, _ = publish_digits(root)
    registry = Registry(LocalStore(store))
    path = onnx_factory.linear_classifier(root / "aliased-1.onnx", features=4, classes=3, seed=1)
    registry.publish(onnx_factory.manifest_for(path, "aliased", "1", labels=("a", "b", "c")), path)
    registry.set_alias("aliased", "production", "1")
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServeProcess]:
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_ALIAS_TTL": str(ALIAS_TTL)}
    yield from start_serve(root / "store", env=env, headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
def client(server: ServeProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
        yield client


def raw_get(server: ServeProcess, path: str) -> tuple[int, Any]:
    """A GET whose path reaches the server byte for byte (httpx would normalise `..`)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


ROWS = np.linspace(0, 16, 3 * 64, dtype=np.float32).reshape(3, 64)


# ---- every route ---------------------------------------------------------------------------


def test_simple_predict(client: httpx.Client, root: Path) -> None:
    answer = client.post(
        f"/models/{MODEL}/predict", params={"top_k": 3}, json={"inputs": ROWS.tolist()}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    expected = reference_logits(root / "mlp.onnx", ROWS)
    np.testing.assert_allclose(body["outputs"]["logits"], expected, rtol=1e-5, atol=1e-6)
    assert [len(p["top_k"]) for p in body["predictions"]] == [3, 3, 3]


@pytest.mark.parametrize(
    "doc",
    [
        {"inputs": {"x": ROWS.tolist()}},
        {"instances": ROWS.tolist()},
        {"instances": [{"x": r} for r in ROWS.tolist()]},
    ],
    ids=["named", "instances", "instance-objects"],
)
def test_simple_predict_other_forms(client: httpx.Client, doc: dict[str, Any]) -> None:
    answer = client.post(f"/models/{MODEL}/predict", json=doc)
    assert answer.status_code == 200, answer.text
    assert np.shape(answer.json()["outputs"]["logits"]) == (3, 10)


@pytest.mark.parametrize("version", [None, "1"])
def test_v2_infer_json(client: httpx.Client, root: Path, version: str | None) -> None:
    path = f"/v2/models/{MODEL}" + (f"/versions/{version}" if version else "") + "/infer"
    tensor = {"name": "x", "shape": [3, 64], "datatype": "FP32", "data": ROWS.ravel().tolist()}
    answer = client.post(path, json={"id": "j1", "inputs": [tensor]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["id"], body["model_version"]) == ("j1", "1")
    expected = reference_logits(root / "mlp.onnx", ROWS)
    np.testing.assert_allclose(
        np.reshape(body["outputs"][0]["data"], (3, 10)), expected, rtol=1e-5, atol=1e-6
    )


def test_v2_infer_binary_built_byte_by_byte(client: httpx.Client, root: Path) -> None:
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [3, 64],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 768},
                }
            ],
            "outputs": [{"name": "logits", "parameters": {"binary_data": True}}],
        }
    ).encode()
    body = header + b"".join(struct.pack("<f", v) for v in ROWS.ravel().tolist())
    answer = client.post(
        f"/v2/models/{MODEL}/infer",
        content=body,
        headers={
            "Inference-Header-Content-Length": str(len(header)),
            "Content-Type": "application/octet-stream",
        },
    )
    assert answer.status_code == 200, answer.text
    length = int(answer.headers["inference-header-content-length"])
    assert json.loads(answer.content[:length])["outputs"][0]["parameters"] == {
        "binary_data_size": 120
    }
    logits = np.frombuffer(answer.content[length:], "<f4").reshape(3, 10)
    np.testing.assert_allclose(
        logits, reference_logits(root / "mlp.onnx", ROWS), rtol=1e-5, atol=1e-6
    )


def test_metadata_ready_health_routes(client: httpx.Client) -> None:
    expected_meta = {
        "name": MODEL,
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 64]}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}],
        "parameters": {
            "version": "1",
            "task": "classification",
            "labels": [str(i) for i in range(10)],
            "features": [],
        },
    }
    ready = {"name": MODEL, "version": "1", "ready": True}
    checks = {
        f"/v2/models/{MODEL}": expected_meta,
        f"/v2/models/{MODEL}/versions/1": expected_meta,
        f"/v2/models/{MODEL}/ready": ready,
        f"/v2/models/{MODEL}/versions/1/ready": ready,
        "/v2/health/live": {"live": True},
        "/v2/health/ready": {"ready": True},
        "/v2": {
            "name": "aiaas",
            "version": "0.1.0",
            "extensions": ["binary_tensor_data", "classification"],
        },
    }
    for path, expected in checks.items():
        answer = client.get(path)
        assert (answer.status_code, answer.json()) == (200, expected), path


# ---- the registry moves under a running server ---------------------------------------------


def test_alias_promotion_is_visible_after_the_ttl(client: httpx.Client, root: Path) -> None:
    def version() -> str:
        answer = client.post("/models/aliased/predict", json={"inputs": [[1.0, 2.0, 3.0, 4.0]]})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["version"])

    assert version() == "1"
    registry = Registry(LocalStore(root / "store"))
    path = onnx_factory.linear_classifier(root / "aliased-2.onnx", features=4, classes=3, seed=2)
    registry.publish(onnx_factory.manifest_for(path, "aliased", "2", labels=("a", "b", "c")), path)
    registry.set_alias("aliased", "production", "2")
    deadline = time.monotonic() + ALIAS_TTL + 5
    while version() != "2":
        assert time.monotonic() < deadline, "promotion not visible"
        time.sleep(0.1)
    assert client.get("/v2/models/aliased").json()["versions"] == ["1", "2"]


def test_a_model_published_while_serving_is_picked_up(client: httpx.Client, root: Path) -> None:
    registry = Registry(LocalStore(root / "store"))
    path = onnx_factory.linear_classifier(root / "late.onnx", features=4, classes=2, seed=4)
    registry.publish(onnx_factory.manifest_for(path, "late-model", "1"), path)
    deadline = time.monotonic() + 10  # rescans are rate-limited to one per 2 s
    while True:
        answer = client.post("/models/late-model/predict", json={"inputs": [[1.0, 2.0, 3.0, 4.0]]})
        if answer.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == "late-model"


# ---- --token and AIAAS_MAX_PAYLOAD_BYTES ---------------------------------------------------


def test_token_flag_and_payload_limit_from_the_environment(root: Path) -> None:
    env = {"AIAAS_MAX_PAYLOAD_BYTES": "2048"}
    auth = {"Authorization": "Bearer flag-token"}
    for server in start_serve(
        root / "store", "--token", "flag-token", "--models", MODEL, env=env, headers=auth
    ):
        assert httpx.get(f"{server.base}/v2/health/live").status_code == 401
        ok = httpx.post(
            f"{server.base}/models/{MODEL}/predict", headers=auth, json={"inputs": [[1.0] * 64]}
        )
        assert ok.status_code == 200, ok.text
        big = httpx.post(
            f"{server.base}/models/{MODEL}/predict", headers=auth, json={"inputs": [[1.0] * 700]}
        )
        assert (big.status_code, big.json()) == (
            413,
            {"error": "request body is over the 2048 byte limit"},
        )
        # --models pins the served set: the other published models are not routed.
        other = httpx.post(
            f"{server.base}/models/aliased/predict", headers=auth, json={"inputs": [[1.0] * 4]}
        )
        assert other.status_code == 404


def test_a_native_crash_leaves_the_python_stacks_in_the_log(root: Path) -> None:
    server = ServeProcess(root / "store")
    try:
        server.wait_ready()
        os.kill(server.process.pid, signal.SIGSEGV)  # as a crash inside onnxruntime would end
        assert server.process.wait(timeout=30) == -signal.SIGSEGV
    finally:
        server.stop()
    log = server.log.read_text(errors="replace")
    assert "Fatal Python error: Segmentation fault" in log and "most recent call first" in log
