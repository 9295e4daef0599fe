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
from tests.reliability.s3proxy import DelayingProxy
from tests.s3server import MotoServer, free_port, wait_answering

MODEL = "churn"
FEATURES = ("age", "income", "tenure", "visits")
GRACE_S = 1
EXIT_HANDLERS_S = 1.0  # the exit handlers' bound, shortened here (10 s)
# Signals further apart than a duplicate (infra/local/ending.py SAME_STOP_S): an operator's.
SIGNAL_GAP_S = 0.6

# The CLI's main with a shorter grace and bound (no option sets them).
SHORT_STOP_MAIN = """
import dataclasses, sys
import infra.local.server as server
from infra.cli.main import main

serve = server.serve

def short_grace(*args, limits, **kwargs):
    return serve(*args, limits=dataclasses.replace(limits, shutdown_grace_s=GRACE_S), **kwargs)

server.serve = short_grace
import infra.local.ending
infra.local.ending.EXIT_HANDLERS_S = BOUND_S
sys.exit(main())
"""


@dataclasses.dataclass
class Served:
    uri: str
    store: ObjectStore
    root: Path


@pytest.fixture(params=["local"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Served:
    """churn published, capture on for every request."""
    if request.param == "s3":
        return request.getfixturevalue("served_s3")
    return _publish(str(tmp_path / "store"), LocalStore(str(tmp_path / "store")), tmp_path)


@pytest.fixture
def served_s3(s3_bucket: str, tmp_path: Path) -> Served:
    uri = f"s3://{s3_bucket}/registry"
    return _publish(uri, open_store(uri), tmp_path)


def _publish(uri: str, store: ObjectStore, tmp_path: Path) -> Served:
    path = onnx_factory.linear_classifier(tmp_path / "churn.onnx", seed=3)
    manifest = onnx_factory.manifest_for(path, MODEL, "1", labels=("stay", "churn", "maybe"))
    registry = Registry(store)
    registry.publish(dataclasses.replace(manifest, features=FEATURES), path)
    set_capture(registry, MODEL, sample=1.0, deny=None, actor="test")
    return Served(uri, store, tmp_path)


class Server:
    """`aiaas --store URI serve --workers N` on loopback, with the short grace and bound."""

    def __init__(
        self, served: Served, workers: int, env: dict[str, str] | None = None,
        bound_s: float = EXIT_HANDLERS_S,
    ) -> None:  # fmt: skip
        main = SHORT_STOP_MAIN.replace("GRACE_S", str(GRACE_S))
        main = main.replace("BOUND_S", str(bound_s))
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
            self.process = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=out, stderr=out)

    def wait_ready(self) -> None:
        url = f"{self.base}/v2/models/{MODEL}/ready"
        wait_answering(self.process, self.port, url, log=self.log)

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


# A directory store for each way; S3 for one (its writes go through boto3).
CUT_OFFS = [("local", 1, 1), ("local", 1, 2), ("local", 2, 1), ("local", 2, 2), ("s3", 2, 2)]


@pytest.mark.parametrize(("served", "workers", "signals"), CUT_OFFS, indirect=["served"])
def test_lines_held_at_a_cut_off_are_written(
    served: Served, stop_server: list[Server], workers: int, signals: int
) -> None:
    """`signals` 1: cut off at the end of the grace; 2: at the second signal."""
    server = Server(served, workers)
    stop_server.append(server)
    server.wait_ready()
    server.predict(range(5))  # held: the buffer writes them a second on, at a request
    slow = server.slow_request()
    started = time.monotonic()
    for _ in range(signals):
        server.process.send_signal(signal.SIGTERM)
        time.sleep(SIGNAL_GAP_S)
    assert server.process.wait(timeout=10) == 1, server.output()
    stopped_in = time.monotonic() - started
    assert _cut_answer(slow).startswith(b"HTTP/1.1 503"), server.output()
    assert "were cut off" in server.output() and "Traceback" not in server.output()
    assert _ages(served.store) == list(range(5)), server.output()
    # A worker's 1 s exit timer and the writes at most: not granian's kill (13 s on). 5 s of
    # slack: a CI host at load 10 took 4.5 s over the signals for the S3 store's writes.
    assert stopped_in < (GRACE_S if signals == 1 else 0.4) + 5 + SIGNAL_GAP_S * signals


# ---- a store that does not answer: the exit handlers' bound ---------------------------------


@pytest.fixture
def stalling(moto_server: MotoServer) -> Iterator[DelayingProxy]:
    """S3 through a proxy whose replies can be held (`delay`): a store that takes the
    requests and never answers."""
    proxy = DelayingProxy(moto_server.port).start()
    yield proxy
    proxy.stop()


@pytest.mark.parametrize(("workers", "signals"), [(1, 0), (2, 2)], ids=["clean-1", "cut-2"])
def test_a_store_that_does_not_answer_ends_the_stop_at_the_bound(
    served_s3: Served, stalling: DelayingProxy, stop_server: list[Server], workers: int,
    signals: int,
) -> None:  # fmt: skip
    server = Server(served_s3, workers, env={"AWS_ENDPOINT_URL": stalling.endpoint})
    stop_server.append(server)
    server.wait_ready()
    server.predict(range(5))
    slow = server.slow_request() if signals else None
    stalling.delay = 3600.0
    started = time.monotonic()
    for _ in range(max(1, signals)):
        server.process.send_signal(signal.SIGTERM)
        time.sleep(SIGNAL_GAP_S)
    assert server.process.wait(timeout=20) == 1, server.output()
    stopped_in = time.monotonic() - started
    assert f"the exit handlers were still running after {EXIT_HANDLERS_S:g} s" in server.output()
    assert "captured lines and drift counts not yet written are lost" in server.output()
    assert EXIT_HANDLERS_S < stopped_in < EXIT_HANDLERS_S + 2.5 + SIGNAL_GAP_S, server.output()
    if slow is not None:
        assert _cut_answer(slow).startswith(b"HTTP/1.1 503")


def test_a_signal_while_the_exit_handlers_wait_ends_the_process_at_once(
    served_s3: Served, stalling: DelayingProxy, stop_server: list[Server]
) -> None:
    """An operator who signals again while the exit handlers wait for the store (one worker:
    with several, the supervisor's own bound ends them)."""
    env = {"AWS_ENDPOINT_URL": stalling.endpoint}
    server = Server(served_s3, 1, env=env, bound_s=60)
    stop_server.append(server)
    server.wait_ready()
    server.predict(range(5))
    stalling.delay = 3600.0
    server.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while "aiaas serve: stopped" not in server.output() and time.monotonic() < deadline:
        time.sleep(0.05)  # the requests are answered: the exit handlers run
    time.sleep(SIGNAL_GAP_S)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=3) == 1, server.output()
    assert "the exit handlers were stopped by another signal" in server.output()
    assert "Traceback" not in server.output()
