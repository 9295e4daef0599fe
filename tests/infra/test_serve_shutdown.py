"""How `aiaas serve` stops, one worker (granian's embedded server, in process) and several
(granian's supervisor), past the easy case that tests/infra/test_serve_hostile.py covers
(SIGTERM, requests finish).

- A second signal while requests still run cuts them off: each caller gets a 503 saying to
  retry, the process says what it cut and exits 1 at once (a handler's thread cannot be
  stopped). The same happens at the end of the grace (30 s; 2 s here). granian's own grace
  timeout raised out of the embedded `serve()` with a traceback and a 500; its supervisor
  ignored a second signal (the request ran on, exit 0) and at the end of the grace killed the
  workers: their callers' connections were reset, with no answer.
- Ctrl-C signals the whole process group: once, each worker gets the SIGINT and then the
  supervisor's SIGTERM, which is still one stop (the requests finish); twice cuts them off.
- SIGHUP (a closed terminal) stops it like SIGTERM: its default action killed the process with
  requests in flight.
"""

from __future__ import annotations

import os
import signal
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.infra.test_serve import ServeProcess
from tests.s3server import children

# Each /slow call appends its start (time.monotonic(): one clock for every process here) to
# `entered` beside the handler: the test sends its signal once the requests are in their
# handlers, seen there, not only after 0.5 s that a loaded machine may not honour. The 0.5 s
# stays before it (`_in_handlers`): a SIGTERM within milliseconds of a request's start, with 2
# workers, at times left the server waiting out the whole grace after the answer, then saying
# it cut requests off (exit 1): a worker still starting lost it, now fixed
# (tests/infra/test_serve_stop_while_starting.py); without the 0.5 s, 1 run of 21 of the
# 2-worker SIGTERM test below still failed, not yet explained.
ENTERED = """
import os, time

def entered():
    with open(os.path.join(os.path.dirname(__file__), "entered"), "a") as marks:
        marks.write(f"{time.monotonic()}\\n")
"""

SLOW_HANDLER = """
import json, time

def slow(event, context):
    entered()
    time.sleep(1.5)
    return {"statusCode": 200, "body": json.dumps({"slept": 1.5})}
"""

SLOW_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
  Slow:
    Type: AWS::Serverless::Function
    Properties:
      Handler: aiaas_slow_handler.slow
      Runtime: python3.12
      Events:
        Slow:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: GET
            Path: /slow
        Ready:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: GET
            Path: /v2/health/ready
"""


HANDLER_S = 4.0  # how long a /slow call of SLOWER_HANDLER sleeps


def _in_handlers(server: ServeProcess, count: int) -> list[float]:
    """The start times of the first `count` /slow calls, once they are all in their handlers
    (and 0.5 s has passed: see ENTERED)."""
    time.sleep(0.5)
    marks = server.log.parent / "entered"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.process.poll() is None, server.output()
        lines = marks.read_text().split() if marks.exists() else []
        if len(lines) >= count:
            return [float(line) for line in lines[:count]]
        time.sleep(0.01)
    raise AssertionError(f"{count} requests did not reach their handlers: {server.output()}")


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_requests_in_flight_finish(tmp_path: Path, workers: int) -> None:
    (tmp_path / "aiaas_slow_handler.py").write_text(ENTERED + textwrap.dedent(SLOW_HANDLER))
    (tmp_path / "template.yaml").write_text(textwrap.dedent(SLOW_TEMPLATE))
    (tmp_path / "store").mkdir()
    args = ("--template", str(tmp_path / "template.yaml"), "--workers", str(workers))
    server = ServeProcess(tmp_path / "store", *args, env={"PYTHONPATH": str(tmp_path)})
    try:
        server.wait_ready()
        with ThreadPoolExecutor(2 * workers) as pool:
            answers = [
                pool.submit(httpx.get, f"{server.base}/slow", timeout=10)
                for _ in range(2 * workers)
            ]
            _in_handlers(server, 2 * workers)
            server.process.send_signal(signal.SIGTERM)
            results = [a.result() for a in answers]
        assert [(r.status_code, r.json()) for r in results] == [(200, {"slept": 1.5})] * (
            2 * workers
        )
        assert server.process.wait(timeout=10) == 0
    finally:
        server.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.base}/slow", timeout=2)


SLOWER_HANDLER = """
import json, time

def model_seconds():  # as a predict function with a slow model says: run it on a thread
    return 1.0

def slow(event, context):
    seconds = 4 if event["rawPath"] == "/slow" else 0  # the ready route answers at once
    if seconds:
        entered()
    time.sleep(seconds)
    return {"statusCode": 200, "body": json.dumps({"slept": seconds})}
"""


# The CLI's main with a shorter shutdown grace: it is 30 s, and no option sets it.
SHORT_GRACE_MAIN = """
import dataclasses, sys
import infra.local.server as server
from infra.cli.main import main

serve = server.serve

def short_grace(*args, limits, **kwargs):
    return serve(*args, limits=dataclasses.replace(limits, shutdown_grace_s=GRACE_S), **kwargs)

server.serve = short_grace
sys.exit(main())
"""


def _slow_server(
    tmp_path: Path, workers: int = 1, grace_s: int = 30, session: bool = False
) -> ServeProcess:
    (tmp_path / "aiaas_slow_handler.py").write_text(ENTERED + textwrap.dedent(SLOWER_HANDLER))
    (tmp_path / "template.yaml").write_text(textwrap.dedent(SLOW_TEMPLATE))
    short_grace = SHORT_GRACE_MAIN.replace("GRACE_S", str(grace_s))
    (tmp_path / "aiaas_short_grace.py").write_text(textwrap.dedent(short_grace))
    (tmp_path / "store").mkdir()
    args = ("--template", str(tmp_path / "template.yaml"), "--workers", str(workers))
    server = ServeProcess(
        tmp_path / "store",
        *args,
        env={"PYTHONPATH": str(tmp_path)},
        main="infra.cli.main" if grace_s == 30 else "aiaas_short_grace",
        preexec=os.setsid if session else None,  # its own process group, for a Ctrl-C
    )
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


def _signal(server: ServeProcess, signum: int, group: bool) -> None:
    if group:  # as a terminal's Ctrl-C: the supervisor and every worker
        os.killpg(server.process.pid, signum)
    else:
        server.process.send_signal(signum)


@dataclass
class Stop:
    answers: list[httpx.Response]
    code: int  # the server's exit status
    answered_in: float  # seconds from the last signal to the last answer
    stopped_in: float  # seconds from the last signal to the server's exit
    # answered_in from just before the last signal was sent: the server's reaction cannot start
    # earlier (a lower bound), though a loaded machine can run the test's thread on later.
    answered_since_sent: float
    handler_left: float  # seconds the earliest handler still had to sleep at the last signal


def _stop_while_slow(
    server: ServeProcess, signals: int, group: bool = False, requests: int = 1
) -> Stop:
    """`requests` 4 s requests at once, `signals` stop signals while they run."""

    def call() -> tuple[httpx.Response, float]:
        answer = httpx.get(f"{server.base}/slow", timeout=45)
        return answer, time.monotonic()

    try:
        with ThreadPoolExecutor(requests) as pool:
            calls = [pool.submit(call) for _ in range(requests)]
            first = min(_in_handlers(server, requests))
            for n in range(signals):
                if n:  # further apart than a duplicate (infra/local/ending.py SAME_STOP_S)
                    time.sleep(0.6)
                sent = time.monotonic()
                _signal(server, signal.SIGINT if group else signal.SIGTERM, group)
            signalled = time.monotonic()
            code = server.process.wait(timeout=45)
            stopped_in = time.monotonic() - signalled
            answers, times = zip(*(c.result() for c in calls), strict=True)
    finally:
        if group and server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGKILL)
        server.stop()
    return Stop(
        list(answers), code, max(times) - signalled, stopped_in, max(times) - sent,
        first + HANDLER_S - signalled,
    )  # fmt: skip


def _assert_cut_off(server: ServeProcess, stop: Stop) -> None:
    for cut in stop.answers:
        assert cut.status_code == 503 and "retry" in cut.json()["error"], cut.text
    assert stop.code == 1
    assert "were cut off" in server.output() and "Traceback" not in server.output()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_second_signal_cuts_requests_off_with_a_503(tmp_path: Path, workers: int) -> None:
    server = _slow_server(tmp_path, workers)
    stop = _stop_while_slow(server, signals=2, requests=4)  # (both workers get some, mostly)
    _assert_cut_off(server, stop)
    assert stop.answered_in < 1.0 and stop.stopped_in < 1.5  # not the handler's 4 s


@pytest.mark.parametrize("workers", [1, 2])
def test_the_end_of_the_grace_cuts_requests_off_with_a_503(tmp_path: Path, workers: int) -> None:
    server = _slow_server(tmp_path, workers, grace_s=2)
    stop = _stop_while_slow(server, signals=1)
    _assert_cut_off(server, stop)
    # At the 2 s grace, counted from before the signal went (the test's thread may run late
    # after sending it), and before the handler's 4 s would have ended (a kill is no answer).
    assert stop.answered_since_sent > 1.9 and stop.answered_in < stop.handler_left


@pytest.mark.parametrize("workers", [1, 2])
def test_requests_within_the_grace_finish(tmp_path: Path, workers: int) -> None:
    server = _slow_server(tmp_path, workers, grace_s=5)
    stop = _stop_while_slow(server, signals=1)
    assert [a.json() for a in stop.answers] == [{"slept": 4}] and stop.code == 0, server.output()


def test_sighup_stops_like_sigterm(tmp_path: Path) -> None:
    server = _slow_server(tmp_path)
    try:
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(httpx.get, f"{server.base}/slow", timeout=10)
            _in_handlers(server, 1)
            server.process.send_signal(signal.SIGHUP)
            assert answer.result().json() == {"slept": 4}
            assert server.process.wait(timeout=10) == 0
    finally:
        server.stop()
    assert "aiaas serve: stopped" in server.output()


def test_workers_end_with_a_killed_supervisor(tmp_path: Path) -> None:
    """SIGKILL (or the OOM killer) on granian's supervisor left its workers serving the port."""
    (tmp_path / "store").mkdir()
    server = ServeProcess(tmp_path / "store", "--workers", "2")
    try:
        server.wait_ready()  # one worker answering: the second may still be starting
        deadline = time.monotonic() + 30
        while len(workers := children(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers) == 2
        server.process.kill()
        server.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [w for w in workers if Path(f"/proc/{w}").exists()]
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.base}/v2/health/live", timeout=2)
    finally:
        server.stop()


def test_ctrl_c_once_lets_requests_finish(tmp_path: Path) -> None:
    """One Ctrl-C gives each worker a SIGINT and then the supervisor's SIGTERM: one stop.
    granian's worker stop signal, set again before it took the first, blocked the worker
    forever holding the GIL: the request never got its answer and the stop waited for the
    supervisor's kill at the end of the grace."""
    server = _slow_server(tmp_path, workers=2, session=True)
    stop = _stop_while_slow(server, signals=1, group=True)
    assert [a.json() for a in stop.answers] == [{"slept": 4}] and stop.code == 0


def test_a_workers_sigint_is_left_to_the_supervisor(tmp_path: Path) -> None:
    """A Ctrl-C's SIGINT to a worker does not stop it: the supervisor, which gets it too, does.
    A worker with no request in flight that stopped on it before the supervisor had asked it
    to (on a loaded machine, 1 Ctrl-C in a few) was taken for a crash by granian ("Unexpected
    exit from worker", exit 1). The SIGINT is sent to the workers alone here: that order,
    always."""
    server = _slow_server(tmp_path, workers=2)
    try:
        workers = children(server.process.pid)
        for worker in workers:
            os.kill(worker, signal.SIGINT)
        time.sleep(0.5)
        assert children(server.process.pid) == workers
        assert httpx.get(f"{server.base}/v2/health/ready", timeout=5).status_code == 200
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=10) == 0
    finally:
        server.stop()
    assert "Unexpected exit" not in server.output()


def test_ctrl_c_twice_cuts_requests_off(tmp_path: Path) -> None:
    server = _slow_server(tmp_path, workers=2, session=True)
    stop = _stop_while_slow(server, signals=2, group=True)
    _assert_cut_off(server, stop)
    assert stop.answered_in < 1.0 and stop.stopped_in < 1.5


@pytest.mark.parametrize("workers", [1, 2])
def test_a_signal_to_the_process_and_again_to_its_group_is_one_stop(
    tmp_path: Path, workers: int
) -> None:
    """timeout(1) (and `kill -- -PGID`) sends SIGTERM to the process, then to its process
    group, so it gets two at once: that is one stop, not an operator insisting. It was read as
    a second signal: requests in flight cut off (or the exit handlers stopped), exit 1."""
    server = _slow_server(tmp_path, workers, session=True)
    try:
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(httpx.get, f"{server.base}/slow", timeout=30)
            _in_handlers(server, 1)
            server.process.send_signal(signal.SIGTERM)
            # Sent back to back, a second SIGTERM still pending merges into the first; one
            # handled already counts again. 0.1 s apart it always has been.
            time.sleep(0.1)
            os.killpg(server.process.pid, signal.SIGTERM)
            result = answer.result()
        assert (result.status_code, result.json()) == (200, {"slept": 4}), server.output()
        assert server.process.wait(timeout=30) == 0, server.output()
        assert "cut off" not in server.output() and "another signal" not in server.output()
    finally:
        if server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGKILL)
        server.stop()
