"""Acceptance: `aiaas rollout` (the CLI, its own process) judges only the requests the rolled-out
alias's split routed, read from a running `aiaas serve`'s `/metrics` (the `alias` label).

- Requests pinned to the candidate (`/models/{name}/versions/{version}/predict`) bypass the
  split: with no other traffic the step waits for traffic (it went to 100% on them alone).
- A staging rollout read from a gateway serving production sees none of production's requests
  (a healthy candidate was rolled back as "not served"); its hint names `--alias staging`.
- Through a gateway serving `@staging`, the staging rollout is judged on its own traffic.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from functions.runtime.registry import Registry
from functions.runtime.rollout.record import RolloutBook
from functions.runtime.store import LocalStore
from tests.infra.test_serve import ROOT, TOKEN, ServeProcess, start_serve
from tests.rollout_models import publish

MODEL = "al"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
ROW = [[0.5, -1.0, 2.0, 0.25]]
BAKE_S = 2.0
WAIT_S = 25.0  # at most this long for the rollout to say it holds, or to end
PACE_S = 0.002


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rollout-alias")
    registry = Registry(LocalStore(root / "store"))
    for version in ("1", "2"):
        publish(registry, root, MODEL, version, "healthy")
    registry.set_alias(MODEL, "production", "1")
    return root


@pytest.fixture(autouse=True)
def aliases(root: Path) -> None:
    """Production and staging both on 1 before each test (a rollout moves its alias)."""
    registry = Registry(LocalStore(root / "store"))
    registry.set_alias(MODEL, "production", "1")
    registry.set_alias(MODEL, "staging", "1")


@pytest.fixture(scope="module")
def production(root: Path) -> Iterator[ServeProcess]:
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_ALIAS_TTL": "0.5"}
    yield from start_serve(root / "store", env=env, headers=HEADERS)


@pytest.fixture(scope="module")
def staging(root: Path) -> Iterator[ServeProcess]:
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_ALIAS_TTL": "0.5"}
    yield from start_serve(root / "store", "--selector", "@staging", env=env, headers=HEADERS)


class Caller:
    """One thread posting to `path` until stopped."""

    def __init__(self, server: ServeProcess, path: str) -> None:
        self.server, self.path = server, path
        self.statuses: list[int] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self.server.base, headers=HEADERS, timeout=10) as client:
            while not self.stopped.is_set():
                answer = client.post(self.path, json={"inputs": ROW})
                self.statuses.append(answer.status_code)
                time.sleep(PACE_S)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(15)


def rollout(
    root: Path, metrics: ServeProcess, *extra: str, hold_s: float | None = 0.0
) -> tuple[int, str]:
    """Run `aiaas rollout MODEL 2`; once it has said it holds for traffic and `hold_s` has
    passed (None: never), Ctrl-C it (it aborts). Its exit status and output."""
    command = [
        sys.executable, "-m", "infra.cli.main", "--store", str(root / "store"), "rollout",
        MODEL, "2", "--steps", "10,100", "--bake", f"{BAKE_S}s", "--min-requests", "20",
        "--metrics", f"{metrics.base}/metrics", "--token", TOKEN, *extra,
    ]  # fmt: skip
    out = root / f"rollout-{time.monotonic_ns()}.out"
    with out.open("w") as sink:
        process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
        started = time.monotonic()
        while process.poll() is None and time.monotonic() < started + WAIT_S:
            held = hold_s is not None and time.monotonic() >= started + hold_s
            if held and "waiting for traffic" in out.read_text():
                process.send_signal(signal.SIGINT)
                break
            time.sleep(0.1)
        try:
            code = process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait(10)
    return code, out.read_text()


def test_requests_pinned_to_the_candidate_do_not_advance_it(
    root: Path, production: ServeProcess
) -> None:
    caller = Caller(production, f"/models/{MODEL}/versions/2/predict")
    try:
        code, output = rollout(root, production)
    finally:
        caller.stop()
    assert len(caller.statuses) >= 40 and set(caller.statuses) == {200}, caller.statuses[:5]
    assert "succeeded" not in output and "at 100%" not in output, output
    assert "waiting for traffic: 0 of 20 requests" in output, output
    assert f"through {MODEL}@production; aiaas rollout abort {MODEL} to stop" in output, output
    assert code == 128 + signal.SIGINT, output
    record = RolloutBook(LocalStore(root / "store")).require(MODEL, "production")
    assert record.state == "aborted", record.state
    scrape = httpx.get(f"{production.base}/metrics", headers=HEADERS).text
    pinned = 'route="POST /models/{name}/versions/{version}/predict",status_class="2xx"'
    assert f'aiaas_requests_total{{alias="-",model="{MODEL}",{pinned},version="2"}}' in scrape


def test_a_staging_rollout_is_not_judged_on_production_traffic(
    root: Path, production: ServeProcess
) -> None:
    caller = Caller(production, f"/models/{MODEL}/predict")  # production (on 1), not staging
    try:
        # Past the bakes after which a candidate that answered none of its share is "not served".
        code, output = rollout(root, production, "--alias", "staging", hold_s=3 * BAKE_S + 1)
    finally:
        caller.stop()
    assert len(caller.statuses) >= 40 and set(caller.statuses) == {200}, caller.statuses[:5]
    # It was rolled back as "not served": production's answers by 1 counted as its baseline's.
    assert "rolled_back" not in output and "answered none" not in output, output
    assert "waiting for traffic: 0 of 20 requests" in output, output
    hint = f"through {MODEL}@staging; aiaas rollout abort {MODEL} --alias staging to stop"
    assert hint in output, output
    assert code == 128 + signal.SIGINT, output
    book = RolloutBook(LocalStore(root / "store"))
    assert book.require(MODEL, "staging").state == "aborted"
    assert book.get(MODEL, "production") is None or not book.require(MODEL, "production").running


def test_a_staging_rollout_is_judged_on_its_own_gateways_traffic(
    root: Path, production: ServeProcess, staging: ServeProcess
) -> None:
    """Production moved to the candidate too: its answers by 2 must not stand for staging's."""
    Registry(LocalStore(root / "store")).set_alias(MODEL, "production", "2")
    callers = [
        Caller(staging, f"/models/{MODEL}/predict"),
        Caller(production, f"/models/{MODEL}/predict"),
    ]
    try:
        code, output = rollout(root, staging, "--alias", "staging", hold_s=None)
    finally:
        for caller in callers:
            caller.stop()
    assert code == 0, output
    assert "succeeded" in output, output
    record = RolloutBook(LocalStore(root / "store")).require(MODEL, "staging")
    assert record.state == "succeeded"
    scrape = httpx.get(f"{staging.base}/metrics", headers=HEADERS).text
    assert f'alias="staging",model="{MODEL}",route="POST /models/{{name}}/predict"' in scrape
