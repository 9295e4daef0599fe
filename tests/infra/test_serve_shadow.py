"""Acceptance: shadow traffic through a real `aiaas serve` (its own process, real HTTP), with
the shadow set by the real CLI (`aiaas shadow`). Every request is answered by the alias's
version; each is replayed to the shadow by the worker's replay process; and `/metrics` then
equals an offline comparison of the same requests run through onnxruntime directly: copies,
rows compared, rows with the same label. With one worker and with `--workers 2` (each worker
its own replay process, a scrape summing both through prometheus_client's multiprocess files).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from functions.predict import metric_names as m
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.functions.test_predict_shadow import offline
from tests.infra.test_serve import ROOT, TOKEN, ServeProcess, start_serve
from tests.publishing import publish_linear

N = 300
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
LABELS = '{model="m",shadow_version="2",version="1"}'


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-shadow")
    registry = Registry(LocalStore(root / "store"))
    for version in ("1", "2"):
        publish_linear(registry, root, "m", version, seed=int(version), labels=("a", "b", "c"))
    registry.set_alias("m", "production", "1")
    command = [sys.executable, "-m", "infra.cli.main", "--store", str(root / "store")]
    done = subprocess.run(
        [*command, "shadow", "m", "2", "--sample", "1.0"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return root


@pytest.fixture(scope="module", params=[1, 2], ids=["one-worker", "two-workers"])
def served(root: Path, request: pytest.FixtureRequest) -> Iterator[tuple[ServeProcess, int]]:
    # INFO: the replay process's own lines (its start, each version it loads) are written too.
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_ALIAS_TTL": "3600", "POWERTOOLS_LOG_LEVEL": "INFO"}
    workers = int(request.param)
    args = ("--workers", str(workers)) if workers > 1 else ()
    for started in start_serve(root / "store", *args, env=env, headers=HEADERS):
        yield started, workers


def requests() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [rng.normal(size=(int(rng.integers(1, 4)), 4)).astype(np.float32) for _ in range(N)]


def shadow_series(text: str) -> dict[str, float]:
    """The shadow's samples for the version pair 1 -> 2, by metric name."""
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(LABELS)
        if value and name.startswith("aiaas_shadow_"):
            values[name] = float(value)
    return values


def scrape_until_replayed(
    client: httpx.Client, count: int, timeout: float = 60
) -> dict[str, float]:
    """Until `count` copies are counted, and timed: a scrape reads each worker's files one by
    one in directory order, so it may read a worker's histogram file before the tally that
    wrote both it and the counters, and the counters after (once in CI: 142 timed of 300)."""
    deadline = time.monotonic() + timeout
    while True:
        series = shadow_series(client.get("/metrics").text)
        replayed = series.get(m.SHADOW_REQUESTS, 0) + series.get(m.SHADOW_ERRORS, 0)
        timed = series.get(m.SHADOW_LATENCY + "_count", 0)
        if (replayed >= count and timed >= replayed) or time.monotonic() > deadline:
            return series
        time.sleep(0.1)


def send(server: ServeProcess, rows: list[np.ndarray]) -> None:
    """Each request on a new connection (none kept alive), so that any worker may take it."""
    fresh = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=server.base, headers=HEADERS, timeout=30, limits=fresh) as client:
        for x in rows:
            answer = client.post("/models/m/predict", json={"inputs": x.tolist()})
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-aiaas-version"] == "1"  # the shadow never answers


def replay_processes(ancestor: int) -> set[int]:
    """The replay processes (functions/shadow/process.py) descended from `ancestor`."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            if b"functions.shadow.process" in (entry / "cmdline").read_bytes():
                pid = int(entry.name)
                if ancestor in ancestors(pid):
                    found.add(pid)
        except (OSError, ValueError):
            continue
    return found


def ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        chain.append(pid)
    return chain


def test_metrics_equal_an_offline_comparison_of_the_requests_sent(
    root: Path, served: tuple[ServeProcess, int]
) -> None:
    server, workers = served
    rows = requests()
    with ThreadPoolExecutor(4) as pool:  # concurrent connections: with two workers, both answer
        list(pool.map(lambda part: send(server, rows[part::4]), range(4)))
    with httpx.Client(base_url=server.base, headers=HEADERS, timeout=30) as client:
        series = scrape_until_replayed(client, N)
    # One replay process per worker, each its own (as N Lambda containers would have N).
    assert len(replay_processes(server.process.pid)) == workers
    registry = Registry(LocalStore(root / "store"))
    served, shadow = offline(registry, root / f"offline-{server.port}", rows)
    agreed = int((served.argmax(axis=1) == shadow.argmax(axis=1)).sum())
    assert 0 < agreed < len(served)  # two different models: some rows agree, some do not
    assert series.get(m.SHADOW_ERRORS, 0) == 0, server.output()
    assert series.get(m.SHADOW_DROPPED, 0) == 0
    assert series[m.SHADOW_REQUESTS] == N
    assert series[m.SHADOW_LATENCY + "_count"] == N
    assert series[m.SHADOW_ROWS] == len(served)
    assert series[m.SHADOW_AGREED] == agreed


def test_every_log_line_is_one_json_object_the_replay_process_s_too(
    served: tuple[ServeProcess, int],
) -> None:
    """A log shipper reads serve's output as JSON lines; the replay process writes among them
    (its start, the shadow version it loads), formatted as serve's own (infra passes it
    AIAAS_LOG_SETUP), not as plain text."""
    server, _ = served
    send(server, requests()[:3])
    with httpx.Client(base_url=server.base, headers=HEADERS, timeout=30) as client:
        scrape_until_replayed(client, 3)
    lines = server.log.read_text().splitlines()
    # The CLI's banner (its address, then the routes) is printed for a person, not logged.
    logged = [line for line in lines if not line.startswith(("aiaas serve: ", "  POST "))]
    records = []
    for line in logged:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
    assert all({"timestamp", "level", "message", "logger"} <= record.keys() for record in records)
    started = [r for r in records if r["message"].startswith("shadow replay process")]
    assert started and all(r["level"] == "INFO" for r in started), lines
    assert any(r["message"].startswith("loaded m:2 ") for r in records), lines  # in the replay
