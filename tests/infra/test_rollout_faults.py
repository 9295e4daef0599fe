"""`aiaas rollout` (the CLI, its own process) against a real `aiaas serve` when things go wrong
around it: a store whose servers read a moved alias only every TTL (S3), the gateway restarted
mid-step, the CLI stopped by a signal, and the CLI killed outright (status, then resume)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from functions.runtime.registry import Registry
from functions.runtime.rollout.plan import REREAD_MARGIN_S
from functions.runtime.rollout.record import RolloutBook, RolloutState
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectStore
from tests.infra.test_rollout_serve import ROW, Answer
from tests.infra.test_rollout_serve import Callers as RolloutCallers
from tests.infra.test_serve import ROOT, TOKEN
from tests.rollout_models import driver_stopped, publish
from tests.s3server import free_port, wait_answering

pytestmark = pytest.mark.usefixtures("stop_signals_as_in_a_terminal")

MODEL = "ro"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Gateway:
    """`aiaas serve` on a fixed port, so it can be restarted where callers and the CLI look."""

    def __init__(self, store: str, work: Path, env: Mapping[str, str]) -> None:
        self.store, self.work, self.env = store, work, env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Gateway:
        command = [sys.executable, "-m", "infra.cli.main", "--store", self.store, "serve"]
        env = {**os.environ, "AIAAS_CACHE_DIR": str(self.work / "cache"), **self.env}
        with (self.work / "serve.log").open("ab") as out:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)], cwd=ROOT, env=env, stdout=out, stderr=out
            )
        url = f"{self.base}/v2/health/ready"
        wait_answering(self.process, self.port, url, headers=AUTH, log=self.work / "serve.log")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class Callers(RolloutCallers):
    """The acceptance test's callers, going on through a gateway restart (status 0 meanwhile)."""

    def _run(self) -> None:
        with httpx.Client(base_url=self.server.base, headers=AUTH, timeout=10) as client:
            while time.time() < self.until:
                sent = time.time()
                try:
                    answer = client.post(f"/models/{MODEL}/predict", json={"inputs": ROW})
                except httpx.TransportError:
                    self.answers.append(Answer(sent, 0, "-"))
                    time.sleep(0.05)
                    continue
                version = answer.headers.get("x-aiaas-version", "-")
                self.answers.append(Answer(sent, answer.status_code, version))


def cli(store: str, gateway: Gateway, *argv: str) -> list[str]:
    """`aiaas rollout ...` as a user types it, reading `gateway`'s metrics when it runs a loop."""
    metrics = ("--metrics", f"{gateway.base}/metrics", "--token", TOKEN)
    extra = metrics if argv[0] in (MODEL, "resume") else ()
    return [sys.executable, "-m", "infra.cli.main", "--store", store, "rollout", *argv, *extra]


def run(
    command: list[str], env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def published(store: ObjectStore, work: Path) -> Registry:
    registry = Registry(store)
    for version in ("1", "2"):
        publish(registry, work, MODEL, version, "healthy")
    registry.set_alias(MODEL, "production", "1")
    return registry


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[str, Registry, Gateway]]:
    registry = published(LocalStore(tmp_path / "store"), tmp_path)
    gateway = Gateway(str(tmp_path / "store"), tmp_path, {"AIAAS_API_TOKEN": TOKEN}).start()
    yield str(tmp_path / "store"), registry, gateway
    gateway.stop()


def test_on_s3_a_step_is_judged_only_once_the_servers_read_the_move(
    tmp_path: Path, s3_bucket: str
) -> None:
    # The servers re-read an S3 alias every AIAAS_ALIAS_TTL: steps were judged on the traffic
    # of the step before, and a healthy candidate rolled back as "not served" (or a 100% step
    # passed while the baseline still answered everything).
    ttl = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_ALIAS_TTL": "1"}
    store = f"s3://{s3_bucket}/registry"
    published(S3Store(s3_bucket, "registry"), tmp_path)
    gateway = Gateway(store, tmp_path, ttl).start()
    callers = Callers(gateway, ROW)  # type: ignore[arg-type]
    callers.thread.start()
    try:
        argv = ("--steps", "50,100", "--bake", "1s", "--min-requests", "5")
        done = run(cli(store, gateway, MODEL, "2", *argv), env=ttl)
        ended = time.time()
    finally:
        callers.until = 0
        callers.thread.join(30)
        gateway.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "settling" not in done.stdout  # holds are not logged, only in the record
    record = RolloutBook(S3Store(s3_bucket, "registry")).require(MODEL, "production")
    assert record.plan.settle_s == 1 + REREAD_MARGIN_S and record.state is RolloutState.SUCCEEDED
    # The last step was judged while the candidate really answered every request: its bake,
    # from the record's own step start (the window once taken back from the CLI's exit began
    # inside the settle when the CLI exited fast, and CI saw version 1 there). The step starts
    # once the alias write has landed, and the settle holds a margin for a server's re-read.
    baked = record.step_started + record.plan.settle_s
    last_second = callers.between(baked, min(baked + record.plan.bake_s, ended))
    assert last_second and {a.version for a in last_second} == {"2"}


def test_a_gateway_restart_mid_step_does_not_end_the_rollout(
    tmp_path: Path, local: tuple[str, Registry, Gateway]
) -> None:
    store, registry, gateway = local
    callers = Callers(gateway, ROW)  # type: ignore[arg-type]
    callers.thread.start()
    argv = ("--steps", "50,100", "--bake", "6s", "--min-requests", "5")
    rollout = subprocess.Popen(
        cli(store, gateway, MODEL, "2", *argv), cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    said: list[str] = []
    failed = threading.Event()

    def read() -> None:  # the CLI's lines as it prints them
        assert rollout.stdout is not None
        for line in rollout.stdout:
            said.append(line)
            if "check fails" in line:
                failed.set()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        # Mid-step, not 2 s after the CLI's start: a loaded host had not started the rollout
        # by then (the restart came before its first check), or had baked its step already.
        wait_for_step(registry)
        gateway.stop()  # its counters start again from zero
        # Down until the CLI has seen it (a check failed), not a second a loaded host may
        # spend before the next check: no "check fails" then.
        assert failed.wait(30), "".join(said)
        gateway.start()
        rollout.wait(timeout=60)
    finally:
        callers.until = 0
        callers.thread.join(30)
        if rollout.poll() is None:
            rollout.kill()
        reader.join(30)
    out = "".join(said)
    # A failed scrape used to abort at once; counts lower than the window's start read negative.
    assert rollout.returncode == 0, out
    assert "check fails" in out and "succeeded" in out
    record = RolloutBook(registry.store).require(MODEL, "production")
    assert record.last_check is not None
    assert record.last_check["metrics"]["candidate"]["requests"] >= 5


def wait_for_step(registry: Registry) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record = RolloutBook(registry.store).get(MODEL, "production")
        # The record is written before the alias moves: wait for the move ("step") itself.
        if record is not None and record.running and any(e["event"] == "step" for e in record.log):
            return
        time.sleep(0.1)
    raise AssertionError("the rollout did not reach its first step")


def age_record(registry: Registry, seconds: float) -> None:
    """Moves the record's last check and log entry `seconds` into the past, as waiting would:
    the status reads how long ago they were."""
    driver_stopped(registry, MODEL, "production", seconds)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stopped_cli_aborts_its_rollout(
    local: tuple[str, Registry, Gateway], signum: int
) -> None:
    store, registry, gateway = local
    command = cli(store, gateway, MODEL, "2", "--bake", "60s")
    rollout = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    wait_for_step(registry)
    rollout.send_signal(signum)
    out, _ = rollout.communicate(timeout=30)
    # It used to die with the alias split 90/10 and the record "running", watched by no one.
    assert rollout.returncode == 128 + signum, out
    assert registry.alias_target(MODEL, "production").describe() == "1"  # type: ignore[union-attr]
    record = RolloutBook(registry.store).require(MODEL, "production")
    assert record.state is RolloutState.ABORTED
    assert f"stopped ({signal.Signals(signum).name})" in record.log[-1]["message"]


def test_a_killed_cli_is_reported_and_can_be_resumed(
    local: tuple[str, Registry, Gateway],
) -> None:
    store, registry, gateway = local
    rollout = subprocess.Popen(
        cli(store, gateway, MODEL, "2", "--steps", "50,100", "--bake", "1s", "--min-requests", "5"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    wait_for_step(registry)
    rollout.kill()
    rollout.wait(10)
    age_record(registry, seconds=20)  # three missed checks (0.2 s each) and the 10 s allowance
    status = run(cli(store, gateway, "status", MODEL))
    # It said "running" with no hint that no process was judging the live split.
    assert "NOT WATCHED: no check for" in status.stdout, status.stdout
    assert f"aiaas rollout resume {MODEL} --alias production" in status.stdout
    callers = Callers(gateway, ROW)  # type: ignore[arg-type]
    callers.thread.start()
    try:
        resumed = run(cli(store, gateway, "resume", MODEL))
    finally:
        callers.until = 0
        callers.thread.join(30)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resumed     the 50% step bakes again from now" in resumed.stdout
    assert registry.alias_target(MODEL, "production").describe() == "2"  # type: ignore[union-attr]
    again = run(cli(store, gateway, "resume", MODEL))
    assert again.returncode == 3  # refused by the state it found (README: The CLI in scripts)
    assert "is not running (it succeeded); nothing to resume" in again.stderr


def test_a_resume_while_the_cli_still_drives_is_refused_and_it_drives_on(
    local: tuple[str, Registry, Gateway],
) -> None:
    # Accepted before: two resumes joined the live driver, three processes judged one rollout.
    store, registry, gateway = local
    rollout = subprocess.Popen(
        cli(store, gateway, MODEL, "2", "--bake", "60s"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_step(registry)
        driver = RolloutBook(registry.store).require(MODEL, "production").driver
        resumed = run(cli(store, gateway, "resume", MODEL))
        assert resumed.returncode == 3, (
            resumed.stdout + resumed.stderr
        )  # README: The CLI in scripts
        assert "is still driven by" in resumed.stderr and "NOT WATCHED" in resumed.stderr
        record = RolloutBook(registry.store).require(MODEL, "production")
        assert record.driver == driver and "resumed" not in [e["event"] for e in record.log]
        assert rollout.poll() is None  # the driver goes on
    finally:
        rollout.terminate()
        rollout.communicate(timeout=30)
    assert RolloutBook(registry.store).require(MODEL, "production").state is RolloutState.ABORTED
