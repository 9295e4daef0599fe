"""`aiaas rollout` (the CLI, its own process) against a real `aiaas serve` while a person moves
the alias by hand, and while `aiaas prune` removes another version (a rollout hunt):

- a canary's weight changed by hand (`promote --weight`) was not seen as a move: the next step
  overwrote it and the rollout went on to 100%;
- a promote or rollback by hand made while a check measured was overwritten by that check's
  step (or undone by its rollback): the moves were unconditional. A proxy answers each scrape
  of `/metrics` late (a slow gateway) so that the hand move lands inside a check;
- a pruned version's series leaving `/metrics` read as a gateway restart: the step was judged on
  every count since the gateway started and advanced with no request sent during it.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from functions.runtime.registry import Registry
from functions.runtime.rollout.record import RolloutBook, RolloutRecord, RolloutState
from functions.runtime.store import LocalStore
from tests.infra.test_rollout_faults import Gateway
from tests.infra.test_serve import ROOT, TOKEN
from tests.rollout_models import publish
from tests.s3server import free_port

pytestmark = pytest.mark.usefixtures("stop_signals_as_in_a_terminal")

MODEL, ALIAS = "ro", "production"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROW = [[0.5, -1.0, 2.0, 0.25]]
SCRAPE_DELAY_S = 4.0  # long enough for a `aiaas promote` process to start and finish within
PACE_S = 0.02  # the callers: 50 requests a second at most, 4-5 a second for a 10% canary


class Callers:
    """One caller thread sending predictions until stopped."""

    def __init__(self, base: str) -> None:
        self.base, self.running = base, True
        self.statuses: list[int] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, headers=AUTH, timeout=10) as client:
            while self.running:
                answer = client.post(f"/models/{MODEL}/predict", json={"inputs": ROW})
                self.statuses.append(answer.status_code)
                time.sleep(PACE_S)

    def stop(self) -> None:
        self.running = False
        self.thread.join(30)


class SlowMetrics:
    """A proxy in front of the gateway's `/metrics` that holds each scrape SCRAPE_DELAY_S
    before reading it (a slow or busy gateway): `arrived`, the epoch times scrapes came, and
    `read`, when the gateway's counts were read for each."""

    def __init__(self, gateway: Gateway) -> None:
        self.arrived: list[float] = []
        self.read: dict[float, float] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                arrived = time.time()
                outer.arrived.append(arrived)
                time.sleep(SCRAPE_DELAY_S)
                outer.read[arrived] = time.time()
                request = urllib.request.Request(f"{gateway.base}/metrics", headers=AUTH)
                with urllib.request.urlopen(request, timeout=10) as answer:
                    body = answer.read()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def aiaas(store: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "infra.cli.main", "--store", str(store), *argv]
    return subprocess.run(
        command, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=60
    )


def start_rollout(store: Path, version: str, metrics: str, *plan: str) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "infra.cli.main", "--store", str(store), "rollout", MODEL, version,
        "--metrics", metrics, "--token", TOKEN, *plan,
    ]  # fmt: skip
    return subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def record_now(store: Path) -> RolloutRecord:
    return RolloutBook(LocalStore(store)).require(MODEL, ALIAS)


def first_step_at(store: Path, rollout: subprocess.Popen[str]) -> float:
    """When the rollout's first move was written (its "step" log entry)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and rollout.poll() is None:
        record = RolloutBook(LocalStore(store)).get(MODEL, ALIAS)  # None until it starts
        steps = [e for e in record.log if e["event"] == "step"] if record else []
        if steps:
            return float(steps[0]["at"])
        time.sleep(0.05)
    raise AssertionError("the rollout did not reach its first step")


def served(store: Path) -> str:
    target = Registry(LocalStore(store)).alias_target(MODEL, ALIAS)
    assert target is not None
    return target.describe()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, Gateway]]:
    """ro:1 (production), ro:2 healthy, ro:3 answering NaN; `aiaas serve` on them."""
    store = tmp_path / "store"
    registry = Registry(LocalStore(store))
    for version, kind in (("1", "healthy"), ("2", "healthy"), ("3", "nan")):
        publish(registry, tmp_path, MODEL, version, kind)
    registry.set_alias(MODEL, ALIAS, "1")
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_METRICS_GONE_AFTER_S": "0"}
    gateway = Gateway(str(store), tmp_path, env).start()
    yield store, gateway
    gateway.stop()


def test_a_weight_changed_by_hand_stops_the_rollout_and_stays(
    setup: tuple[Path, Gateway],
) -> None:
    store, gateway = setup
    callers = Callers(gateway.base)
    plan = ("--steps", "10,50,100", "--bake", "4s", "--min-requests", "5")
    rollout = start_rollout(store, "2", f"{gateway.base}/metrics", *plan)
    try:
        first_step_at(store, rollout)
        cut = aiaas(store, "promote", MODEL, "2", "--weight", "0.01")  # the canary cut to 1%
        out, _ = rollout.communicate(timeout=60)
    finally:
        callers.stop()
        rollout.kill()
    assert cut.returncode == 0 and "ro@production -> 1 (99%) + 2 (1%)" in cut.stdout, cut.stderr
    assert "its driver's next check ends it as superseded" in cut.stderr
    # Before: the next step overwrote the person's split, and the rollout succeeded at 100%.
    assert rollout.returncode == 1, out
    record = record_now(store)
    assert record.state is RolloutState.SUPERSEDED, out
    moved = "the alias was moved outside the rollout (it serves 1 (99%) + 2 (1%)); left as is"
    assert record.log[-1]["message"] == moved
    assert [e["event"] for e in record.log] == ["started", "step", "superseded"]
    assert served(store) == "1 (99%) + 2 (1%)"


@pytest.mark.parametrize(
    ("candidate", "during", "by_hand", "left"),
    [
        # The check that finds the step baked (the second: the first is made mid-bake)
        # decides to advance while the person rolls the canary back.
        ("2", 2, ("rollback", MODEL), "1"),
        # The check that finds the NaN answers decides to roll back while the person
        # promotes the candidate to everyone.
        ("3", 1, ("promote", MODEL, "3"), "3"),
    ],
    ids=["advance-over-a-rollback", "roll-back-over-a-promote"],
)
def test_a_move_by_hand_while_a_check_measures_is_not_overwritten(
    setup: tuple[Path, Gateway], candidate: str, during: int, by_hand: tuple[str, ...], left: str
) -> None:
    store, gateway = setup
    proxy = SlowMetrics(gateway)
    callers = Callers(gateway.base)
    plan = ("--steps", "10,50,100", "--bake", "1s", "--min-requests", "5")
    rollout = start_rollout(store, candidate, proxy.url, *plan)
    try:
        step_at = first_step_at(store, rollout)
        deadline = time.monotonic() + 60
        while len(checks := [t for t in proxy.arrived if t > step_at]) < during:
            assert time.monotonic() < deadline and rollout.poll() is None
            time.sleep(0.02)
        moved = aiaas(store, *by_hand)
        moved_at = time.time()
        out, _ = rollout.communicate(timeout=90)
    finally:
        callers.stop()
        rollout.kill()
        proxy.close()
    assert moved.returncode == 0, moved.stderr
    # The move by hand landed while that check's scrape was held, before it read the counts.
    assert moved_at < proxy.read[checks[during - 1]], "the move by hand came too late"
    assert rollout.returncode == 1, out
    record = record_now(store)
    assert record.state is RolloutState.SUPERSEDED, out
    # Before: the step after it (or the rollback) overwrote the person's move, and the
    # rollout went on to 100% (or put the baseline back).
    assert served(store) == left
    assert record.log[-1]["message"].startswith(
        f"the alias was moved outside the rollout (it serves {left}); left as is"
    )
    if candidate == "3":
        assert "(its check had decided to roll back: error rate" in record.log[-1]["message"]
    alias = Registry(LocalStore(store)).alias_record(MODEL, ALIAS)
    assert alias is not None and "rollout" not in str(alias["updated_by"])  # the person's


def test_a_pruned_versions_series_leaving_metrics_is_not_a_restart(
    tmp_path: Path, setup: tuple[Path, Gateway]
) -> None:
    store, gateway = setup
    registry = Registry(LocalStore(store))
    with httpx.Client(base_url=gateway.base, headers=AUTH, timeout=10) as client:

        def send(count: int) -> None:
            for _ in range(count):
                answer = client.post(f"/models/{MODEL}/predict", json={"inputs": ROW})
                assert answer.status_code in (200, 500)

        registry.set_alias(MODEL, ALIAS, "2")  # this morning's production answered 30
        send(30)
        registry.set_alias(MODEL, ALIAS, "3", weight=0.5)  # 3 gets series of its own
        send(20)
        registry.set_alias(MODEL, ALIAS, "1")
        send(5)
    publish(registry, tmp_path, MODEL, "4", "healthy")  # 3 is neither aliased nor the latest
    plan = ("--steps", "50,100", "--bake", "1s", "--min-requests", "5")
    rollout = start_rollout(store, "2", f"{gateway.base}/metrics", *plan)  # no caller at all
    try:
        step_at = first_step_at(store, rollout)
        while "waiting for traffic" not in str((record_now(store).last_check or {}).get("reason")):
            assert time.time() < step_at + 30 and rollout.poll() is None
            time.sleep(0.1)
        pruned = aiaas(store, "prune", MODEL, "--keep", "1", "--yes")
        assert pruned.returncode == 0, pruned.stdout + pruned.stderr
        assert registry.versions(MODEL) == ["1", "2", "4"]
        time.sleep(3)  # 15 checks, each with 3's series gone from /metrics
        record = record_now(store)
        # Before: "2 at 100% (the step baked within every limit)" on the 30 requests 2
        # answered before the rollout began.
        assert record.running and record.step == 0, record.log
        assert str((record.last_check or {}).get("reason")).startswith(
            "baked; waiting for traffic: 0 of 5 requests"
        )
        aborted = aiaas(store, "rollout", "abort", MODEL)
        assert aborted.returncode == 0, aborted.stderr
        out, _ = rollout.communicate(timeout=30)
    finally:
        rollout.kill()
    assert rollout.returncode == 1, out
    assert served(store) == "1"
