"""A new rollout bakes each step at least 1 s. `--bake 0s` was taken: each step, the 100% one
too, advanced on its first --min-requests answers, so a rollout could finish on 60 requests
with no time for a p99 window or a slow error to show. Refused before anything moves, from
the CLI (a usage error, exit 2, as `--bake 5x` is) and the control plane (400, as other bad
plans are)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.rollout.record import RolloutBook
from tests.infra.test_cli_rollout import MODEL, aiaas, closed_port, two_versions

FLOOR = "must be at least 1 s and at most 604,800 s (a week)"


@pytest.mark.parametrize(("bake", "got"), [("0s", "0 s"), ("500ms", "0.5 s"), ("0", "0 s")])
def test_the_cli_refuses_a_bake_under_a_second(tmp_path: Path, bake: str, got: str) -> None:
    store, registry = two_versions(tmp_path)
    metrics = f"http://127.0.0.1:{closed_port()}/metrics"
    done = aiaas(store, "rollout", MODEL, "2", "--bake", bake, "--metrics", metrics)
    assert done.returncode == 2, done.stderr
    last = done.stderr.splitlines()[-1]
    assert last == f"aiaas rollout: error: argument --bake: bake {FLOOR}; got {got}"
    assert registry.alias_target(MODEL, "production").describe() == "1"  # type: ignore[union-attr]
    assert RolloutBook(registry.store).get(MODEL, "production") is None  # nothing started


def test_the_control_plane_refuses_a_bake_under_a_second(tmp_path: Path) -> None:
    _, registry = two_versions(tmp_path)
    client = TestClient(create_app(registry.store))
    path = f"/control/models/{MODEL}/rollouts"
    plan = {"steps": [0.1, 1], "max_error_rate": 0.01}
    refused = client.post(path, json={"version": "2", "plan": {**plan, "bake_s": 0}})
    assert (refused.status_code, refused.json()) == (400, {"error": f"bake {FLOOR}; got 0 s"})
    assert RolloutBook(registry.store).get(MODEL, "production") is None
    # 1 s passes the plan's checks: refused next for the missing state machine, as any start
    # on a directory store is.
    taken = client.post(path, json={"version": "2", "plan": {**plan, "bake_s": 1}})
    assert taken.status_code == 409 and "no rollout state machine" in taken.json()["error"]
