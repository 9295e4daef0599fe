"""What `aiaas serve` writes as it ends: the captured lines its capture buffer holds (they
leave about once a second, on a request) are written by its exit handlers, however the stop
ends: requests all answered, cut off at the end of the grace, or cut off by a second signal;
one worker (in process) or several. A request whose body never finishes holds the stop open
here (as a slow client or a slow model does), so it is cut off; capture is on for every
request, on a directory store and on S3 (moto's server on loopback).

Cut off once, one worker skipped the exit handlers (it ended in os._exit to leave a handler's
thread behind): the lines held were lost with the process.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from functions.runtime.capture.reader import captured_lines
from functions.runtime.capture.setting import set_capture
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore, ObjectStore, open_store
from tests import onnx_factory
from tests.infra.test_serve import ROOT
from tests.s3server import free_port

MODEL = "churn"
FEATURES = ("age", "income", "tenure", "visits")
GRACE_S = 1
EXIT_HANDLERS_S = 1.0  # the bound on the exit handlers at a cut-off, shortened here (5 s)

# The CLI's main with a shorter grace and bound (no option sets them).
SHORT_STOP_MAIN = """
import dataclasses, sys
import infra.local.server as server
from infra.cli.main import main

serve = server.serve

def short_grace(*args, limits, **kwargs):
    return serve(*args, limits=dataclasses.replace(limits, shutdown_grace_s=GRACE_S), **kwargs)

server.serve = short_grace
server.EXIT_HANDLERS_CUT_S = EXIT_HANDLERS_S
sys.exit(main())
"""


@dataclasses.dataclass
class Served:
    uri: str
    store: ObjectStore
    root: Path


@pytest.fixture(params=["local", "s3"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Served:
    """churn published, capture on for every request."""
    if request.param == "s3":
        uri = f"s3://{request.getfixturevalue('s3_bucket')}/registry"
        store = open_store(uri)
    else:
        uri = str(tmp_path / "store")
        store = LocalStore(uri)
    path = onnx_factory.linear_classifier(tmp_path / "churn.onnx", seed=3)
    manifest = onnx_factory.manifest_for(path, MODEL, "1", labels=("stay", "churn", "maybe"))
    registry = Registry(store)
    registry.publish(dataclasses.replace(manifest, features=FEATURES), path)
    set_capture(registry, MODEL, sample=1.0, deny=None, actor="test")
    return Served(uri, store, tmp_path)


class Server:
    """`aiaas --store URI serve --workers N` on loopback, with the short grace and bound."""

    def __init__(self, served: Served, workers: int, env: dict[str, str] | None = None) -> None:
        main = SHORT_STOP_MAIN.replace("GRACE_S", str(GRACE_S))
        main = main.replace("EXIT_HANDLERS_S", str(EXIT_HANDLERS_S))
        (served.root / "aiaas_short_stop.py").write_text(textwrap.dedent(main))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = served.root / f"serve-{self.port}.log"
        command = [sys.executable, "-m", "aiaas_short_stop", "--store", served.uri, "serve"]
        command += ["--port", str(self.port), "--workers", str(workers)]
        full_env = {
            **os.environ,
            "AIAAS_CACHE_DIR": str(served.root / "cache"),
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(served.root),
            **(env or {}),
        }
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=full_env, stdout=out, stderr=out
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                ready = httpx.get(f"{self.base}/v2/models/{MODEL}/ready", timeout=2)
                if ready.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"not ready: {self.output()}")

    def predict(self, ages: range) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as client:
            for age in ages:
                row = {"age": age, "income": 1000, "tenure": 1, "visits": 3}
                answer = client.post(f"/models/{MODEL}/predict", json={"instances": [row]})
                assert answer.status_code == 200, answer.text

    def slow_request(self) -> socket.socket:
        """A predict request whose body stops half way: in flight until it is cut off."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        head = f"POST /models/{MODEL}/predict HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n"
        sock.sendall(head.encode() + b'{"instances": [')
        time.sleep(0.2)  # the app is reading its body
        return sock

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def stop_server() -> Iterator[list[Server]]:
    servers: list[Server] = []
    yield servers
    for server in servers:
        server.stop()


def _ages(store: ObjectStore) -> list[int]:
    return sorted(line["request"]["instances"][0]["age"] for line in captured_lines(store, MODEL))


def _cut_answer(sock: socket.socket) -> bytes:
    with sock:
        return sock.recv(65536)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("signals", [1, 2], ids=["grace", "second-signal"])
def test_lines_held_at_a_cut_off_are_written(
    served: Served, stop_server: list[Server], workers: int, signals: int
) -> None:
    server = Server(served, workers)
    stop_server.append(server)
    server.wait_ready()
    server.predict(range(5))  # held: the buffer writes them a second on, at a request
    slow = server.slow_request()
    started = time.monotonic()
    for _ in range(signals):
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
    assert server.process.wait(timeout=10) == 1, server.output()
    stopped_in = time.monotonic() - started
    assert _cut_answer(slow).startswith(b"HTTP/1.1 503"), server.output()
    assert "were cut off" in server.output() and "Traceback" not in server.output()
    assert _ages(served.store) == list(range(5)), server.output()
    assert stopped_in < (GRACE_S if signals == 1 else 0.2) + 1.5
