"""Acceptance: `aiaas rollout` (the CLI, its own process) against a running `aiaas serve` and
the real predict handler, with callers sending requests throughout. A candidate that fails
(raises on load, answers NaN, disagrees with the baseline on 30% of rows) is rolled back
automatically: the callers' errors during its step stay under the canary's share of the
requests sent in that step, and there are none once it is rolled back.

Bounded: bakes of a few seconds, at most MAX_REQUESTS requests and MAX_SECONDS per rollout.
"""

from __future__ import annotations

import json
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
from functions.runtime.store import LocalStore
from tests.infra.test_serve import ROOT, TOKEN, ServeProcess, start_serve
from tests.rollout_models import publish, rows_disagreeing

MODEL = "ro"
BAKE_S = 4.0
FIRST_SHARE = 0.1
MAX_REQUESTS = 20_000
# The callers' pace: on a fast host, unpaced, they reached MAX_REQUESTS before a rollback's
# end and left no answer after it to check (a CI run of 2026-12-04).
PACE_S = 0.001
MAX_SECONDS = 40.0
CANDIDATES = {"2": "nan", "3": "broken", "4": "other", "5": "healthy"}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rollout-serve")
    registry = Registry(LocalStore(root / "store"))
    publish(registry, root, MODEL, "1", "healthy")
    for version, kind in CANDIDATES.items():
        publish(registry, root, MODEL, version, kind)
    registry.set_alias(MODEL, "production", "1")
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServeProcess]:
    # INFO: what serve says of a canary that comes and goes is checked below.
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_ALIAS_TTL": "3600", "POWERTOOLS_LOG_LEVEL": "INFO"}
    yield from start_serve(root / "store", env=env, headers={"Authorization": f"Bearer {TOKEN}"})


@dataclass(frozen=True)
class Answer:
    sent: float  # epoch seconds
    status: int
    version: str


class Callers:
    """One caller thread sending predictions (no routing key: each one drawn by weight)."""

    def __init__(self, server: ServeProcess, rows: list[list[float]]) -> None:
        self.server, self.rows = server, rows
        self.answers: list[Answer] = []
        self.until = time.time() + MAX_SECONDS
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=self.server.base, headers=headers, timeout=10) as client:
            due = time.time()
            while time.time() < self.until and len(self.answers) < MAX_REQUESTS:
                row = self.rows[len(self.answers) % len(self.rows)]
                due += PACE_S
                time.sleep(max(0.0, due - time.time()))
                sent = time.time()
                answer = client.post(f"/models/{MODEL}/predict", json={"inputs": [row]})
                version = answer.headers.get("x-aiaas-version", "-")
                self.answers.append(Answer(sent, answer.status_code, version))

    def between(self, start: float, end: float) -> list[Answer]:
        return [a for a in self.answers if start <= a.sent < end]


def rollout(root: Path, server: ServeProcess, version: str, *extra: str) -> tuple[int, str]:
    command = [
        sys.executable, "-m", "infra.cli.main", "--store", str(root / "store"), "rollout",
        MODEL, version, "--steps", "10,50,100", "--bake", f"{BAKE_S}s",
        "--max-error-rate", "0.01", "--max-p99-ms", "500", "--min-requests", "20",
        "--metrics", f"{server.base}/metrics", "--token", TOKEN, *extra,
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=MAX_SECONDS, check=False
    )
    return done.returncode, done.stdout + done.stderr


def run_with_callers(
    root: Path, server: ServeProcess, version: str, rows: list[list[float]], *extra: str
) -> tuple[int, str, RolloutRecord, Callers]:
    callers = Callers(server, rows)
    callers.thread.start()
    code, output = rollout(root, server, version, *extra)
    record = RolloutBook(LocalStore(root / "store")).require(MODEL, "production")
    first = next(e for e in record.log if e["event"] == "step")
    # The callers go on for the whole step the plan gave the candidate, and a second past it.
    callers.until = min(callers.until, max(first["at"] + BAKE_S, record.log[-1]["at"]) + 1.0)
    callers.thread.join(MAX_SECONDS)
    return code, output, record, callers


ROW = [[0.5, -1.0, 2.0, 0.25]]


@pytest.mark.parametrize(
    ("version", "reason"),
    [("2", "error rate"), ("3", "answered none of")],
    ids=["nan", "raises-on-load"],
)
def test_a_failing_candidate_is_rolled_back(
    root: Path, server: ServeProcess, version: str, reason: str
) -> None:
    code, output, record, callers = run_with_callers(root, server, version, ROW)
    assert code == 1, output
    assert record.candidate == version and record.state == "rolled_back", output
    assert reason in record.log[-1]["message"], output
    assert "rolled_back" in output
    step = next(e for e in record.log if e["event"] == "step")
    assert step["message"].startswith(f"{version} at 10%")
    in_step = callers.between(step["at"], step["at"] + BAKE_S)
    errors = [a for a in callers.answers if a.status != 200]
    assert len(in_step) >= 200, len(in_step)
    assert len(errors) < FIRST_SHARE * len(in_step), (len(errors), len(in_step))
    assert {a.version for a in errors} <= {version}
    print(f"{version}: {len(errors)} errors, {len(in_step)} requests in the step")  # the report
    after = callers.between(record.log[-1]["at"], float("inf"))
    assert after and all(a.status == 200 and a.version == "1" for a in after)
    if version == "3":  # its canary never loaded, and the rollback ended the split
        said = server.log.read_text(errors="replace")
        assert f"{MODEL}: canary 3 not loaded" in said
        # It said "its canary and shadow are served again" of an alias that named neither.
        assert f"{MODEL}: names no canary or shadow any more; version 1 serves every" in said
        assert "served again" not in said


def test_a_disagreeing_candidate_never_reaches_a_caller(root: Path, server: ServeProcess) -> None:
    rows = rows_disagreeing(0.3, 200)
    code, output, record, callers = run_with_callers(
        root, server, "4", rows, "--min-agreement", "0.98"
    )
    assert (code, record.state) == (1, "rolled_back"), output
    assert record.log[-1]["message"].startswith("agreement with the baseline 0."), output
    assert [e["event"] for e in record.log] == ["started", "step", "rolled_back"]
    assert record.log[1]["message"].startswith("shadowing 4")
    assert callers.answers and all(a.status == 200 and a.version == "1" for a in callers.answers)
    target = Registry(LocalStore(root / "store")).alias_target(MODEL, "production")
    assert target is not None and target.describe() == "1"  # the shadow is gone too


def test_a_healthy_candidate_is_rolled_out_and_shown(root: Path, server: ServeProcess) -> None:
    # Shorter bakes than the failing candidates' (whose step must hold 200 requests): a step
    # holds past its bake until the candidate has answered --min-requests.
    code, output, record, callers = run_with_callers(
        root, server, "5", ROW, "--bake", "1.5s", "--json"
    )
    assert (code, record.state) == (0, "succeeded"), output
    # --json: stdout (first in `output`) is the final record alone; the log lines went to
    # stderr (a start's --json was ignored, its text lines on stdout).
    final, end = json.JSONDecoder().raw_decode(output)
    assert (final["id"], final["state"], final["etag"]) == (record.id, "succeeded", final["etag"])
    assert output[end:].lstrip().splitlines()[0].split()[1] == "started"
    assert [e["event"] for e in record.log] == ["started", "step", "step", "step", "succeeded"]
    assert all(a.status == 200 for a in callers.answers)
    assert callers.answers[-1].version == "5"
    status = subprocess.run(
        [sys.executable, "-m", "infra.cli.main", "--store", str(root / "store"), "rollout",
         "status", MODEL],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert status.startswith(f"{MODEL}@production: 1 -> 5, succeeded")
    versions = subprocess.run(
        [sys.executable, "-m", "infra.cli.main", "--store", str(root / "store"), "versions", MODEL],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    lines = versions.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("rollout "))
    assert lines[first].startswith(f"rollout {MODEL}@production: 1 -> 5, succeeded")
    assert len(lines) == first + 4  # the headline and the last three log entries: kept short
    assert lines[-1].split()[1:3] == ["succeeded", "the"]
    Registry(LocalStore(root / "store")).set_alias(MODEL, "production", "1")
