"""Work a function leaves for after its response (the shadow copy) runs once granian has the
response, over real HTTP: the gateway's real RSGI app in a real granian server, one worker and
two, a job that holds the GIL for JOB_S after every response. Each response still arrives in
well under JOB_S, every job runs, and one that raises changes nothing for the caller.
The predict service's side (which copy, when): tests/functions/test_predict_shadow_after.py;
exactness through `aiaas serve` with both worker counts: tests/infra/test_serve_shadow.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.local.app import BodyLimits, GatewayApp
from infra.local.gateway import Gateway, GatewayRequest, GatewayResponse
from infra.local.server import serve
from tests.client_gc import steady_client
from tests.infra.test_serve import ROOT
from tests.s3server import free_port, wait_answering

JOB_S = 0.5
REQUESTS = 6


class AfterGateway(Gateway):
    """Answers at once and leaves JOB_S of GIL-holding work for after (a file per job done);
    the path `/fail` leaves a job that raises."""

    def __init__(self, done: Path) -> None:
        super().__init__({})
        self.done = done

    def dispatch(self, request: GatewayRequest, defer: bool = False) -> GatewayResponse:
        assert defer  # the app always takes the work for after the response
        job = self._fail if request.path == "/fail" else self._busy
        return GatewayResponse(200, [("content-type", "text/plain")], b"ok", after=[job])

    def _busy(self) -> None:
        end = time.perf_counter() + JOB_S
        while time.perf_counter() < end:  # holds the GIL, as building a copy does
            pass
        (self.done / f"{os.getpid()}-{time.monotonic_ns()}").touch()

    def _fail(self) -> None:
        raise RuntimeError("a copy that fails")


def main(port: int, workers: int, done: str) -> None:
    """The server (run in a subprocess by the test)."""
    app = GatewayApp(AfterGateway(Path(done)), BodyLimits(1024, 5.0), warm_up=False)
    serve("127.0.0.1", port, lambda: app, workers=workers)


# One server per worker count for the module: each test counts the jobs it leaves itself.
@pytest.fixture(scope="module", params=[1, 2], ids=["one-worker", "two-workers"])
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[tuple[str, Path]]:
    port, done = free_port(), tmp_path_factory.mktemp("after") / "done"
    done.mkdir()
    code = f"from tests.infra.test_serve_after import main; main({port}, {request.param}, {str(done)!r})"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        wait_answering(process, port, base + "/up", timeout=30)
        while not any(done.iterdir()):  # the warm-up request's job
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        yield base, done
    finally:
        process.terminate()
        process.wait(30)


def jobs_done(done: Path, count: int) -> None:
    """Until `count` jobs have written their files (each writes its file once its work ended)."""
    deadline = time.monotonic() + 10
    while len(list(done.iterdir())) < count:
        assert time.monotonic() < deadline, f"{len(list(done.iterdir()))} of {count} jobs ran"
        time.sleep(0.01)


def test_responses_do_not_wait_for_the_work_after_them(server: tuple[str, Path]) -> None:
    base, done = server
    before = len(list(done.iterdir()))
    slowest = 0.0
    with steady_client() as pauses:  # a late xdist worker's collections are not the server's
        for sent in range(REQUESTS):
            jobs_done(done, before + sent)  # the last job is done: the loop is free for this
            with httpx.Client(base_url=base, timeout=10) as client:  # new connection: any worker
                start = time.perf_counter()
                assert client.get("/p").text == "ok"
                slowest = max(slowest, time.perf_counter() - start)
    assert slowest < JOB_S / 2, pauses  # answered before its job's JOB_S of GIL-holding work
    jobs_done(done, before + REQUESTS)  # and every job ran
    assert len(list(done.iterdir())) == before + REQUESTS


def test_a_job_that_fails_changes_nothing_for_the_caller(server: tuple[str, Path]) -> None:
    base, done = server
    before = len(list(done.iterdir()))
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(3):
            response = client.get("/fail")
            assert (response.status_code, response.text) == (200, "ok")
        assert client.get("/p").text == "ok"  # the worker serves on
    jobs_done(done, before + 1)  # and runs the next job: the server is idle for the next test
