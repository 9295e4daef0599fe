"""`aiaas rollout` as a user runs it, in a process of its own: its help, and a start that cannot
read the gateway's metrics (no `aiaas serve` running), which must leave nothing behind."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.rollout.record import RolloutBook, RolloutState
from functions.runtime.store import LocalStore
from tests.infra.test_serve import ROOT
from tests.rollout_models import publish

MODEL = "ro"


def aiaas(store: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli.main", "--store", str(store), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def two_versions(tmp_path: Path) -> tuple[Path, Registry]:
    """A store of MODEL:1 (production) and MODEL:2, both healthy: a rollout's start."""
    store = tmp_path / "store"
    registry = Registry(LocalStore(store))
    for version in ("1", "2"):
        publish(registry, tmp_path, MODEL, version, "healthy")
    registry.set_alias(MODEL, "production", "1")
    return store, registry


def test_help_names_both_words(tmp_path: Path) -> None:
    # It was a ValueError traceback: argparse cannot format a positional's tuple metavar.
    done = aiaas(tmp_path / "store", "rollout", "--help")
    assert done.returncode == 0, done.stderr
    assert "MODEL|status|abort|resume VERSION|MODEL" in done.stdout and not done.stderr


def test_a_start_without_metrics_leaves_no_rollout_running(tmp_path: Path) -> None:
    store, registry = two_versions(tmp_path)
    metrics = f"http://127.0.0.1:{closed_port()}/metrics"

    done = aiaas(store, "rollout", MODEL, "2", "--bake", "1s", "--metrics", metrics)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"aiaas rollout: error: cannot read the gateway's metrics at {metrics}: <urlopen error "
        "[Errno 111] Connection refused> (is `aiaas serve` running there? start it, or give "
        "its /metrics URL with --metrics)"
    ], done.stderr
    # Refused before anything was written: the alias never split and no rollout was recorded.
    # It used to stay "running" at 10% with no one running it, then was written "started" and
    # "aborted" into the alias's rollout history (exit 1) for a typo in the URL.
    assert registry.alias_target(MODEL, "production").describe() == "1"  # type: ignore[union-attr]
    assert RolloutBook(registry.store).get(MODEL, "production") is None

    again = aiaas(store, "rollout", MODEL, "2", "--bake", "1s", "--metrics", metrics)
    assert "is running" not in again.stderr and "cannot read the gateway's metrics" in again.stderr


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("10,150", "steps are percentages above 0 and at most 100; got '10,150'"),
        ("0,100", "steps are percentages above 0 and at most 100; got '0,100'"),
        ("10,5,100", "steps must rise, each above the one before, to 100; got '10,5,100'"),
        ("10,50", "steps must rise, each above the one before, to 100; got '10,50'"),
        (  # was "a step must be above 0 and at most 1; got 0.0"
            "1e-9,100",
            "steps are kept to 0.0001 percent, and '1e-9,100' would be 0,100: each must stay "
            "above 0 and above the one before",
        ),
        (  # was "got [0.1, 0.1, 1.0]"
            "10.00001,10.00002,100",
            "steps are kept to 0.0001 percent, and '10.00001,10.00002,100' would be 10,10,100: "
            "each must stay above 0 and above the one before",
        ),
    ],
)
def test_bad_steps_are_refused_in_the_percent_typed(
    tmp_path: Path, steps: str, message: str
) -> None:
    # They were refused in fractions the user never typed ("at most 1; got 1.5").
    done = aiaas(tmp_path / "store", "rollout", MODEL, "2", "--steps", steps)
    assert done.returncode == 2  # a usage error, before the store is read
    assert done.stderr.splitlines()[-1] == f"aiaas rollout: error: argument --steps: {message}"


def test_metrics_lost_mid_rollout_abort_it_instead_of_leaving_the_split_live(
    tmp_path: Path,
) -> None:
    store, registry = two_versions(tmp_path)
    with start_scrapes_then_gone() as metrics:
        argv = ("--bake", "1s", "--retry-for", "2s", "--metrics", metrics)
        done = aiaas(store, "rollout", MODEL, "2", *argv)
    assert done.returncode == 1
    # Retried for --retry-for (a gateway restarting), then aborted.
    assert "aborted" in done.stdout and "s (cannot read the gateway's metrics" in done.stdout
    assert "checks failed for " in done.stdout
    assert done.stderr.splitlines()[-1].startswith(
        "aiaas rollout: error: cannot read the gateway's metrics at"
    )
    # It used to exit with the alias still split 90/10 and the record "running", unwatched.
    assert registry.alias_target(MODEL, "production").describe() == "1"  # type: ignore[union-attr]
    record = RolloutBook(registry.store).get(MODEL, "production")
    assert record is not None and record.state is RolloutState.ABORTED
    assert "traffic back on the baseline" in record.log[-1]["message"]


@contextlib.contextmanager
def start_scrapes_then_gone() -> Iterator[str]:
    """The /metrics URL of a gateway that answers the start's two scrapes (the check before
    anything is written, the first step's window: empty metrics, no request yet), then is gone."""
    server = http.server.HTTPServer(("127.0.0.1", 0), OneScrape)

    def two_scrapes_then_gone() -> None:
        for _ in range(2):
            server.handle_request()
        server.server_close()  # refused from now: not left to hang in the backlog till timeout

    threading.Thread(target=two_scrapes_then_gone, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.server_close()


class OneScrape(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/plain; version=0.0.4")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


class WantsToken(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # what `aiaas serve --token` answers a scrape without one
        body = b'{"error": "missing or invalid token"}'
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


def test_a_gateway_that_wants_a_token_is_named_as_the_fix(tmp_path: Path) -> None:
    store, registry = two_versions(tmp_path)
    server = http.server.HTTPServer(("127.0.0.1", 0), WantsToken)
    threading.Thread(target=server.handle_request, daemon=True).start()
    metrics = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        done = aiaas(store, "rollout", MODEL, "2", "--bake", "1s", "--metrics", metrics)
    finally:
        server.server_close()
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].endswith(
        "HTTP Error 401: Unauthorized (the gateway wants its token: set AIAAS_API_TOKEN or "
        "AIAAS_API_TOKEN_FILE (a file of tokens, one a line: its first is sent), or pass --token "
        "or --token-file)"
    ), done.stderr
    assert registry.alias_target(MODEL, "production").describe() == "1"  # type: ignore[union-attr]


def test_with_json_logs_every_stderr_line_is_json(tmp_path: Path) -> None:
    """AIAAS_LOG_FORMAT=json made the error line JSON, but the command's own log lines stayed
    text: the WARNING that the rollout aborted, in a pipeline that reads JSON lines."""
    store, _ = two_versions(tmp_path)
    with start_scrapes_then_gone() as metrics:  # aborted at its first check: a WARNING
        done = subprocess.run(
            [sys.executable, "-m", "infra.cli.main", "--store", str(store), "rollout", MODEL,
             "2", "--bake", "1s", "--retry-for", "0s", "--metrics", metrics],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "AIAAS_LOG_FORMAT": "json"},
        )  # fmt: skip
    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # each one a JSON document
    assert [line["level"] for line in lines] == ["WARNING", "ERROR"]
    assert "aborted" in lines[0]["message"] and lines[0]["logger"] == "aiaas.rollout"


def test_a_pruned_candidate_is_refused_with_a_rollouts_advice(tmp_path: Path) -> None:
    """A rollout started as a prune removed its candidate (or after) said "point the
    deployment at an alias", the advice for a server pinned to a version (hunt_races 2)."""
    store, registry = two_versions(tmp_path)
    publish(registry, tmp_path, MODEL, "3", "healthy")  # so that 2 is neither latest nor aliased
    pruned = aiaas(store, "prune", MODEL, "--keep", "1", "--yes")
    assert pruned.returncode == 0, pruned.stderr
    done = aiaas(store, "rollout", MODEL, "2", "--metrics", f"http://127.0.0.1:{closed_port()}/")
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().endswith(
        f"version '2' of model '{MODEL}' was deleted (pruned; `aiaas versions {MODEL}` shows "
        "when): roll out a published version"
    ), done.stderr
    assert RolloutBook(registry.store).get(MODEL, "production") is None  # nothing started


def test_a_start_on_a_deleted_alias_says_who_deleted_it(tmp_path: Path) -> None:
    """A rollout started as someone deleted the alias said it "points at no version yet:
    promote a first version to it", as of an alias never set (hunt_races 5)."""
    store, registry = two_versions(tmp_path)
    registry.delete_alias(MODEL, "production", actor="bob", force=True)
    done = aiaas(store, "rollout", MODEL, "2", "--metrics", f"http://127.0.0.1:{closed_port()}/")
    assert done.returncode == 3, done.stderr
    said = done.stderr.strip()
    assert f"alias 'production' of model '{MODEL}' was deleted by bob at " in said, said
    assert "(it pointed at 1); roll it back to restore it" in said, said
    assert "points at no version yet" not in said
    assert RolloutBook(registry.store).get(MODEL, "production") is None  # nothing started
    never = aiaas(store, "rollout", MODEL, "2", "--alias", "staging", "--metrics", "http://x/")
    assert "alias 'staging' of model 'ro' points at no version yet" in never.stderr, never.stderr
