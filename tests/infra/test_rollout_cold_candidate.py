"""Acceptance: a rollout judges the candidate, not its load. `aiaas rollout` (the CLI, its own
process) against a running `aiaas serve`, callers with routing keys sending requests
throughout, a tight `--max-p99-ms`: a healthy candidate whose session takes ~1 s to make is
rolled out (before, the callers routed to it waited for that load and it was rolled back),
and a candidate that answers slowly every time is still rolled back on its p99.

Bounded: short bakes, at most MAX_SECONDS per rollout, a few thousand requests.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from functions.runtime.registry import Registry
from functions.runtime.rollout.record import RolloutBook, RolloutRecord
from functions.runtime.routed import ROUTE_SPACE
from functions.runtime.store import LocalStore
from tests.client_gc import steady_client
from tests.infra.test_serve import ROOT, TOKEN, ServeProcess, start_serve
from tests.rollout_models import publish

MODEL = "cold"
LIMIT_MS = 150  # a warm answer takes ~1 ms here (stalls of a loaded 2-core CI machine: up to
# ~100 ms), the slow-load session ~0.7-1.4 s to make on a quiet host, a slow-run answer ~0.2-0.5 s
MAX_SECONDS = 40.0
# A candidate that has answered nothing is judged "not served" after two bakes (docs/rollout.md:
# set --bake above the model's load time). The slow-load session took 3.1-3.6 s to make alone
# at load average 6 on this 2-core host and 4.8-5.9 s beside two busy loops; in the test, its
# first answer came 3.5-5.1 s after the step began there, and 1 run of 7 there (and a CI run)
# had none by the 6 s of a 3 s bake: rolled back "not served". 7 s: 14 s, twice the worst seen
# (~7 s), and a rollout still well inside MAX_SECONDS (two bakes, ~16 s).
BAKE = "7s"
FIRST_SHARE = 0.1


def keys(canary: bool, count: int) -> list[str]:
    """Routing keys the first step's split sends to the canary (or keeps on the main)."""
    found = []
    for i in range(10_000):
        key = f"caller-{i}"
        digest = hashlib.blake2b(f"{MODEL}\n{key}".encode(), digest_size=8).digest()
        if (int.from_bytes(digest, "big") < FIRST_SHARE * ROUTE_SPACE) == canary:
            found.append(key)
            if len(found) == count:
                return found
    raise AssertionError("no such keys")


CANARY_KEYS, MAIN_KEYS = keys(True, 2), keys(False, 1)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rollout-cold")
    registry = Registry(LocalStore(root / "store"))
    for version, kind in (("1", "healthy"), ("2", "slow-load"), ("3", "slow-run")):
        publish(registry, root, MODEL, version, kind)
    registry.set_alias(MODEL, "production", "1")
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServeProcess]:
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_ALIAS_TTL": "3600"}
    yield from start_serve(root / "store", env=env, headers={"Authorization": f"Bearer {TOKEN}"})


@dataclass(frozen=True)
class Answer:
    key: str
    sent: float  # epoch seconds
    seconds: float  # the caller's wait, as its client measured it
    status: int
    version: str


class Callers:
    """One thread per routing key, each sending predictions back to back."""

    def __init__(self, server: ServeProcess) -> None:
        self.server = server
        self.answers: list[Answer] = []
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(key,), daemon=True)
            for key in CANARY_KEYS + MAIN_KEYS
        ]
        for thread in self.threads:
            thread.start()

    def _run(self, key: str) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}", "x-aiaas-routing-key": key}
        end = time.time() + MAX_SECONDS
        with httpx.Client(base_url=self.server.base, headers=headers, timeout=10) as client:
            while not self.stop.is_set() and time.time() < end:
                sent, start = time.time(), time.perf_counter()
                answer = client.post(f"/models/{MODEL}/predict", json={"inputs": [[0.5, -1, 2, 0]]})
                seconds = time.perf_counter() - start
                version = answer.headers.get("x-aiaas-version", "-")
                self.answers.append(Answer(key, sent, seconds, answer.status_code, version))

    def finish(self) -> list[Answer]:
        self.stop.set()
        for thread in self.threads:
            thread.join(MAX_SECONDS)
        return self.answers


@dataclass(frozen=True)
class Rollout:
    code: int
    output: str
    record: RolloutRecord
    answers: list[Answer]
    client_pauses: list[tuple[int, float]]  # this process's own GC pauses meanwhile


def rollout(root: Path, server: ServeProcess, version: str) -> Rollout:
    """`aiaas rollout` of `version` in two steps, with the callers throughout."""
    with steady_client() as pauses:
        return _rollout(root, server, version, pauses)


def _rollout(
    root: Path, server: ServeProcess, version: str, pauses: list[tuple[int, float]]
) -> Rollout:
    callers = Callers(server)
    time.sleep(0.3)  # callers in flight when the first step moves the alias
    command = [
        sys.executable, "-m", "infra.cli.main", "--store", str(root / "store"), "rollout",
        MODEL, version, "--steps", "10,100", "--bake", BAKE, "--max-error-rate", "0.01",
        "--max-p99-ms", str(LIMIT_MS), "--metrics", f"{server.base}/metrics", "--token", TOKEN,
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=MAX_SECONDS, check=False
        )
    finally:
        answers = callers.finish()
    record = RolloutBook(LocalStore(root / "store")).require(MODEL, "production")
    return Rollout(done.returncode, done.stdout + done.stderr, record, answers, pauses)


def test_a_healthy_candidate_slow_to_load_is_not_judged_on_its_load(
    root: Path, server: ServeProcess
) -> None:
    done = rollout(root, server, "2")
    assert (done.code, done.record.state) == (0, "succeeded"), done.output
    answers = done.answers
    assert all(a.status == 200 for a in answers)
    by_candidate = [a.seconds for a in answers if a.version == "2"]
    # 2 of 4 fresh-clone CI runs of 2026-12-02 had 2-5 of ~3,000 candidate answers at 0.8-1.05
    # s, never seen alone: the client's own full collection (a late xdist worker's millions of
    # objects) stalling every caller at once, now kept out (`steady_client`). Should a wait
    # remain, the message says whose: the client's pauses, the slow answers of any version
    # (key, time sent), and what the server logged around them.
    assert len(by_candidate) >= 20 and max(by_candidate) < 0.6, (
        sorted(round(s, 3) for s in by_candidate if s > 0.05),
        len(by_candidate),
        done.client_pauses,
        [
            (a.key, a.version, round(a.sent, 3), round(a.seconds, 3))
            for a in answers
            if a.seconds > 0.3
        ],
        server.output()[-4000:],
    )
    # A caller routed to the canary got the main version while it loaded, then the canary for
    # good: never back.
    for key in CANARY_KEYS:
        seen = [a.version for a in answers if a.key == key]
        assert seen == sorted(seen) and seen[-1] == "2", (key, seen[-50:])
    Registry(LocalStore(root / "store")).set_alias(MODEL, "production", "1")


def test_a_candidate_slow_to_answer_is_still_rolled_back(root: Path, server: ServeProcess) -> None:
    done = rollout(root, server, "3")
    assert (done.code, done.record.state) == (1, "rolled_back"), done.output
    assert done.record.log[-1]["message"].startswith("p99 latency"), done.output
