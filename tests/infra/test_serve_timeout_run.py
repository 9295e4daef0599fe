"""A predict call past its function's `Timeout` is a 504 in `aiaas serve` (as Lambda ends the
invocation there), and its onnxruntime run is stopped too: before, the thread ran on, a Loop
of 1e9 trips burning a core for ~1,000 s after its caller had had the 504 (and four such
calls, every thread a route may hold). A Loop whose trip count is a value never runs on the
event loop (functions/runtime/input_cost.py); a model whose cost grows with the body's size
through shapes does, once its calls are cheap, and its run there stops at the Timeout too."""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.cli.main import main
from infra.model_resources import main as generate
from infra.template import DEFAULT_TEMPLATE
from tests import onnx_factory
from tests.infra.test_serve import ServeProcess, start_serve


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the store, the template) `aiaas serve` is started on."""
    root = tmp_path_factory.mktemp("timeout_run")
    template = root / "template.yaml"  # the stack's, with the model's Timeout at 1 s
    models = "  Models:\n    looping:\n      Timeout: 1\n    squaring:\n      Timeout: 1\n"
    template.write_text(DEFAULT_TEMPLATE.read_text().replace("  Models:\n", models, 1))
    with contextlib.redirect_stdout(io.StringIO()):
        assert generate(["--write", "--template", str(template)]) == 0
    # 20 products of 2,000 x 2,000: ~1.75 s of a core (more on a slower one), stopped between
    # two past the 1 s Timeout; a one-value call ~18 us in onnxruntime, under the 0.1 ms that
    # keeps a route on a thread (timing.OFFLOAD_MODEL_S). 100 products took ~90 us a small call,
    # and 40 did on an AVX2 AMD EPYC under CI's load: over it, the route stayed on a thread and
    # the heavy call was the offloaded 504, not the inline 503.
    models = {
        "looping": onnx_factory.looping(root / "looping.onnx"),
        "squaring": onnx_factory.squaring(root / "squaring.onnx", products=20),
    }
    for name, path in models.items():
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            store = str(root / "store")
            assert main(["publish", str(path), "--name", name, "--store", store]) == 0
    return root / "store", template


@contextlib.contextmanager
def serving(stack: tuple[Path, Path]) -> Iterator[ServeProcess]:
    """A started server, stopped whatever happens."""
    servers = start_serve(stack[0], "--template", str(stack[1]))
    server = next(servers)
    try:
        # The other functions' inits (the control plane's imports, a second after the
        # predict functions') are over: what the test then measures is the model's run alone.
        assert idle_within(server.process.pid, 30.0, window=1.1) < 30.0
        yield server
    finally:
        next(servers, None)  # start_serve's own end: the server stopped


@pytest.fixture(scope="module")
def server(stack: tuple[Path, Path]) -> Iterator[ServeProcess]:
    with serving(stack) as server:
        yield server


def cpu_seconds(pid: int) -> float:
    """The process's user and system CPU time, from /proc (what `top` reads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_within(pid: int, seconds: float, window: float = 0.5) -> float:
    """How long until the process used under 10% of a core for `window` seconds (inf: not
    within `seconds`)."""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        before = cpu_seconds(pid)
        time.sleep(window)
        if cpu_seconds(pid) - before < 0.1 * window:
            return time.monotonic() - began
    return float("inf")


# Idle within this of a 504: a run not stopped burns a core for ~1,000 s (1e9 trips). Not 4 s:
# beside three busy loops (a load of 8-9 on 2 cores) the process kept one thread busy, ~0.2 s
# of CPU a half second, for 1.7-3.5 s after the run had stopped ("a run stopped after 1 s"
# logged first), and no half second was idle within 4 s (4 runs of 6).
STOPPED_S = 15.0


def test_a_run_past_the_function_timeout_is_stopped_offloaded_or_inline(
    server: ServeProcess, stack: tuple[Path, Path]
) -> None:
    pid = server.process.pid
    with httpx.Client(base_url=server.base, timeout=10) as http:
        # A route's first call goes to a thread: the 504 at the Timeout, and the run stops.
        answer = http.post("/models/looping/predict", json={"inputs": [[1e9]]})
        assert answer.status_code == 504, answer.text
        assert idle_within(pid, STOPPED_S) < STOPPED_S, "the run went on after the 504"
        # Cheap calls do not bring a Loop whose trip count is a value onto the event loop: its
        # next long run is on a thread too, a 504 at the Timeout (inline: run_deadline's 503).
        for _ in range(70):  # an average CPU a call decays by 0.9 a call, under 2 ms
            small = http.post("/models/looping/predict", json={"inputs": [[3]]})
            assert small.json()["outputs"] == {"y": [[3.0]]}
        answer = http.post("/models/looping/predict", json={"inputs": [[1e9]]})
        assert answer.status_code == 504, answer.text
        assert idle_within(pid, STOPPED_S) < STOPPED_S, "the run went on after the 504"
        # Cheap calls bring a model whose cost grows with the body through shapes onto the
        # event loop: a long run there held every route of the server (no 504 is possible
        # there), now it stops at the Timeout. Whether the route is inline is the gateway's
        # judgement on its recent calls, measured: under load it kept the route on a thread,
        # where the heavy call is the offloaded 504 (its run stopped, as above). The cheap calls
        # are then sent again, until a heavy call is the inline one, each time on a fresh
        # server: on one server all 4 tries were 504s (2 runs of 6 at loads of 6-9 on 2 cores,
        # with 70 or 320 cheap calls a try), a state that outlasted hundreds of calls.
        for _ in range(4):
            with serving(stack) as fresh, httpx.Client(base_url=fresh.base, timeout=10) as again:
                for _ in range(70):
                    small = again.post("/models/squaring/predict", json={"inputs": [[1]]})
                    assert small.status_code == 200, small.text
                began = time.monotonic()
                answer = again.post("/models/squaring/predict", json={"inputs": [[0.0] * 2000]})
                took = time.monotonic() - began
                if answer.status_code == 504:
                    stopped = idle_within(fresh.process.pid, STOPPED_S) < STOPPED_S
                    assert stopped, "the run went on after the 504"
                    continue
                assert again.get("/v2/health/ready").status_code == 200
                break
        assert answer.status_code == 503 and took < 3, answer.text
        # run_deadline's answer: the run has ended
        assert "ran longer than the 1 s a run may take here" in answer.json()["error"]
