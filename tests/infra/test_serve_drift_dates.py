"""Drift counts are dated when they were served, under a running `aiaas serve`, as the real
`aiaas monitor` reads them: a burst of rows, then quiet, then one more request. Before, the
burst's rows were held until that next request (no timer under `aiaas serve`) and written with
it, dated then: `monitor --window` counted them in the window of that later request and found
none in the window they were served in. Now the server writes them an interval after they were
served, each snapshot dated by its last row.

Bounded: `AIAAS_DRIFT_FLUSH_SECONDS=1`, ~45 rows, ~10 s.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests import onnx_factory
from tests.infra.test_serve import TOKEN, ServeProcess, start_serve
from tests.infra.test_serve_versions import aiaas

MODEL = "dated"
INTERVAL_S = 1.0


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("drift-dates")
    (root / "store").mkdir()
    path = onnx_factory.linear_classifier(root / "model.onnx", seed=1)
    aiaas(root, "publish", str(path), "--name", MODEL, "--labels", "a,b,c", "--alias", "production")
    train = np.random.default_rng(0).normal(size=(500, 4))
    lines = ["x_0,x_1,x_2,x_3", *(",".join(map(str, row)) for row in train)]
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    aiaas(root, "baseline", MODEL, str(root / "train.csv"))
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServeProcess]:
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_DRIFT_FLUSH_SECONDS": str(INTERVAL_S)}
    yield from start_serve(root / "store", env=env, headers={"Authorization": f"Bearer {TOKEN}"})


def send(server: ServeProcess, rows: int) -> None:
    body = {"inputs": np.random.default_rng(rows).normal(size=(rows, 4)).tolist()}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answer = httpx.post(f"{server.base}/models/{MODEL}/predict", json=body, headers=headers)
    assert answer.status_code == 200, answer.text


def rows_in(root: Path, window_s: int, until: float | None = None) -> int:
    """The rows `aiaas monitor --window` counts in the `window_s` seconds to `until` (now)."""
    flags = ["--window", f"{window_s}s", "--json"]
    if until is not None:
        flags += ["--until", datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")]
    return int(json.loads(aiaas(root, "monitor", MODEL, *flags))["rows"])


def test_rows_are_counted_in_the_window_they_were_served_in(
    server: ServeProcess, root: Path
) -> None:
    send(server, 1)  # the version's first request reads its baseline: its window starts
    time.sleep(2.5 * INTERVAL_S)
    burst = time.time()
    for _ in range(4):
        send(server, 10)
    burst_end = time.time()
    time.sleep(4 * INTERVAL_S)  # quiet: nothing asks the server to write what it holds
    late = time.time()
    send(server, 1)
    time.sleep(2.5 * INTERVAL_S)

    # The whole seconds from the burst's to before the late request: the burst's 40 rows.
    until = math.floor(late) - 1
    assert until > burst_end + INTERVAL_S
    assert rows_in(root, until - math.floor(burst) + 1, until) == 40
    # From just before the late request to now: its one row, not the burst's with it. The span
    # is named by both ends (`--until`), not "the last N s" as of when `aiaas monitor` starts:
    # on a loaded host that start came seconds later and the window slid past the late row.
    # Read again until the server's next write lands (its interval, under load a little more).
    deadline = time.monotonic() + 20 * INTERVAL_S
    while True:
        end = math.ceil(time.time())
        late_rows = rows_in(root, end - math.floor(late) + 1, end)
        if late_rows or time.monotonic() > deadline:
            break
        time.sleep(INTERVAL_S)
    assert late_rows == 1
