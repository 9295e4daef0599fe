"""A rollout's --max-p99-ms against a gateway's /metrics: known only to a latency bucket.

The gateway's latency histogram has bounds about 2.5x apart (10 ms, 25 ms, ...), and the p99 is
interpolated within the bucket it lies in. A candidate whose every request took 11-14 ms was
rolled back as "p99 latency 21.7 ms is over the limit 20 ms", a figure no request came near,
and nothing had said that a limit of 20 ms cannot be judged from those buckets. Now the start
says so before anything moves (naming the bounds that are judged exactly), and a verdict made
inside the bucket says it is an estimate. Real parts: the gateway's own Prometheus families
and text, the rollout's reader of them, the CLI on a directory store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from functions.runtime.registry import Registry
from functions.runtime.rollout.decision import Action, decide
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.store import LocalStore
from infra.local.prometheus import PrometheusFamilies
from infra.local.rollout_metrics import GatewayMetricsSource
from tests.infra.test_serve import ROOT
from tests.rollout_models import publish

ROUTE = "POST /models/{name}/predict"


def measured(candidate_s: float) -> GatewayMetricsSource:
    """Baseline 1 answered 300 requests in 1 ms, candidate 2 40 in `candidate_s`, through
    production, all after the window began; the source reading the families' own text."""
    families = PrometheusFamilies()
    source = GatewayMetricsSource(lambda: families.render()[0].decode())
    source.begin("m", 0.0)
    for version, seconds, count in (("1", 0.001, 300), ("2", candidate_s, 40)):
        for _ in range(count):
            families.request("m", version, ROUTE, "2xx", seconds, alias="production")
    return source


def judged(limit_ms: float, candidate_s: float = 0.011) -> tuple[Action, str, object]:
    metrics = measured(candidate_s).measure("m", "1", "2", 0.0, alias="production")
    plan = RolloutPlan(steps=(0.1, 1.0), bake_s=5, max_error_rate=0.01, max_p99_ms=limit_ms)
    decision = decide(plan, 0, 60.0, metrics)
    return decision.action, decision.reason, metrics.candidate.p99_bucket_ms


def test_a_limit_inside_the_p99s_bucket_is_said_to_be_an_estimate() -> None:
    action, reason, bucket = judged(20)  # every request took 11 ms
    assert bucket == (10.0, 25.0)
    assert action is Action.ROLL_BACK
    assert reason.startswith("p99 latency 24.9 ms is over the limit 20 ms (an estimate: ")
    assert (
        "the gateway's latency histogram puts the p99 between 10 and 25 ms, and the limit lies "
        "between; a --max-p99-ms on a bucket bound, 10 or 25, is judged exactly)"
    ) in reason


def test_limits_on_a_bucket_bound_are_judged_exactly() -> None:
    action, reason, _ = judged(25)  # every request under 25 ms: it passes, as it should
    assert action is Action.ADVANCE, reason
    action, reason, _ = judged(10)  # every request over 10 ms: over, and no estimate to say
    assert (action, reason) == (Action.ROLL_BACK, "p99 latency 24.9 ms is over the limit 10 ms")
    action, reason, _ = judged(8, candidate_s=0.03)  # the p99's bucket (25-50) is all over 8
    assert action is Action.ROLL_BACK
    assert reason == "p99 latency 49.8 ms is over the limit 8 ms"


def start(tmp_path: Path, limit: str) -> subprocess.CompletedProcess[str]:
    """`aiaas rollout m 2 --max-p99-ms LIMIT` as a user runs it, with no gateway to read."""
    store = tmp_path / "store"
    registry = Registry(LocalStore(store))
    if not registry.models():
        for version in ("1", "2"):
            publish(registry, tmp_path, "m", version, "healthy")
        registry.set_alias("m", "production", "1")
    argv = ["--store", str(store), "rollout", "m", "2", "--bake", "1s", "--max-p99-ms", limit]
    command = [sys.executable, "-m", "infra.cli.main", *argv]
    command += ["--metrics", "http://127.0.0.1:9/metrics"]  # nothing listens there
    env = {**os.environ, "AIAAS_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_the_start_says_before_any_move_that_its_limit_is_inside_a_bucket(
    tmp_path: Path,
) -> None:
    done = start(tmp_path, "20")
    assert done.returncode == 1  # no gateway: refused before the alias moved
    err = done.stderr
    assert "WARNING aiaas.rollout: --max-p99-ms 20 lies inside the gateway's latency bucket " in err
    assert "10-25 ms" in err and "a limit on a bucket bound (10 or 25 ms) is judged exactly" in err
    assert err.index("--max-p99-ms 20 lies inside") < err.index("cannot read the gateway's")
    record = Registry(LocalStore(tmp_path / "store")).alias_record("m", "production")
    assert record is not None and (record["version"], record.get("weights")) == ("1", None)
    done = start(tmp_path, "25")
    assert done.returncode == 1
    assert "cannot read the gateway's" in done.stderr and "lies inside" not in done.stderr
