"""A promote or rollback reaches a running `aiaas serve` on the very next request, also while
the version it names loads: callers send all along to a route run on threads (a model of
~1.5 ms an answer), `aiaas promote` (the CLI, its own process) names a version that takes ~1 s
to load, and every request sent after the command returned is answered by that version (they
wait for its load). Before, the request that saw the change loaded it while the others were
answered by the old version for the whole load: dozens of requests, for up to ~1 s.

Bounded: 4 callers at ~60 requests a second, ~10 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.infra.test_serve import TOKEN, ServeProcess, start_serve
from tests.infra.test_serve_versions import aiaas
from tests.rollout_models import publish

MODEL = "swap"
CALLERS = 4
PAUSE_S = CALLERS / 60  # each caller's pause between requests: ~60 a second in all
ROW = [[0.5, -1.0, 2.0, 0.25]]


@dataclass(frozen=True)
class Answer:
    sent: float  # epoch seconds, as the caller sent it
    status: int
    version: str


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("promote-wait")
    registry = Registry(LocalStore(root / "store"))
    publish(registry, root, MODEL, "1", "busy")
    publish(registry, root, MODEL, "2", "slow-load")
    registry.set_alias(MODEL, "production", "1")
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServeProcess]:
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_ALIAS_TTL": "3600"}  # the registry watch alone
    yield from start_serve(root / "store", env=env, headers={"Authorization": f"Bearer {TOKEN}"})


@contextmanager
def callers(server: ServeProcess) -> Iterator[list[Answer]]:
    """`CALLERS` threads sending predictions until the block ends; their answers meanwhile."""
    answers: list[Answer] = []
    stop = threading.Event()

    def call() -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
            while not stop.is_set():
                sent = time.time()
                answer = client.post(f"/models/{MODEL}/predict", json={"inputs": ROW})
                version = answer.headers.get("x-aiaas-version", "-")
                answers.append(Answer(sent, answer.status_code, version))
                stop.wait(PAUSE_S)

    threads = [threading.Thread(target=call) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    try:
        yield answers
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)


def settled(answers: list[Answer], since: float, version: str, count: int = 30) -> bool:
    """Whether `version` has answered `count` requests sent after `since` (the first few of
    them waited for its load), over a second at least."""
    after = [a for a in list(answers) if a.sent > since and a.version == version]
    return len(after) >= count and after[-1].sent - after[0].sent >= 1.0


def wait_settled(answers: list[Answer], since: float, version: str) -> None:
    deadline = time.monotonic() + 60
    while not settled(answers, since, version) and time.monotonic() < deadline:
        time.sleep(0.1)


def test_requests_after_a_promote_wait_for_the_new_version(
    server: ServeProcess, root: Path
) -> None:
    with callers(server) as answers:
        time.sleep(1.5)  # the route's time measured: its calls run on threads, side by side
        promoting = time.time()
        aiaas(root, "promote", MODEL, "2")
        promoted = time.time()
        wait_settled(answers, promoted, "2")
        rolling = time.time()  # from here on either version may answer, until it returns
        aiaas(root, "rollback", MODEL)
        rolled_back = time.time()
        wait_settled(answers, rolled_back, "1")
    before = [a for a in answers if a.sent < promoting]
    assert before and {(a.status, a.version) for a in before} == {(200, "1")}
    after_promote = [a for a in answers if promoted < a.sent < rolling]
    stale = [a for a in after_promote if (a.status, a.version) != (200, "2")]
    assert len(after_promote) >= 20 and not stale, (
        f"{len(stale)} of {len(after_promote)} requests sent after the promote returned were "
        f"not answered by version 2, the last {stale[-1].sent - promoted:.3f} s after it"
        if stale
        else len(after_promote)
    )
    after_rollback = [a for a in answers if a.sent > rolled_back]
    assert len(after_rollback) >= 20
    assert {(a.status, a.version) for a in after_rollback} == {(200, "1")}
