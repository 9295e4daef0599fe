"""`aiaas rollout`: shift an alias to a version step by step, judged on per-version metrics,
rolled back at once on a breach; `aiaas rollout status|abort MODEL`.

The loop runs here, in this process: it reads a running `aiaas serve`'s `/metrics` (or, with
`--metrics cloudwatch`, the deployed functions' EMF metrics) and moves the alias in the store,
which the gateway (or every Lambda container, within its alias TTL) picks up. Ctrl-C aborts
the rollout: all traffic back on the version the alias served before.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from typing import Any

from functions.runtime import names
from functions.runtime.errors import BadRequest
from functions.runtime.registry import Registry
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan, parse_duration, parse_steps
from functions.runtime.rollout.record import RolloutBook, RolloutRecord
from functions.runtime.rollout.source import MetricsSource
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import open_store

ACTIONS = ("status", "abort")
DEFAULT_METRICS = "http://127.0.0.1:8080/metrics"

log = logging.getLogger("aiaas.rollout")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "rollout",
        help="shift an alias to a version in steps, rolling back on a breach (or status|abort)",
        description="aiaas rollout MODEL VERSION [options]: send VERSION each share in --steps "
        "in turn, each for --bake, while its error rate, p99 latency (and, with "
        "--min-agreement, first its agreement with the current version as a shadow) stay "
        "within the limits; roll back at once when one is breached. "
        "aiaas rollout status MODEL / aiaas rollout abort MODEL: the rollout's state and log; "
        "stop it and send everything back.",
    )
    # Two positionals, not one of nargs=2 with a tuple metavar: argparse cannot format that
    # for a positional, and `aiaas rollout --help` was a ValueError traceback.
    p.add_argument(
        "first",
        metavar="MODEL|status|abort",
        help="MODEL to start a rollout of; status or abort for a running one",
    )
    p.add_argument("second", metavar="VERSION|MODEL", help="the VERSION to roll out, or the MODEL")
    p.add_argument("--alias", default="production", help="alias to move (default: production)")
    p.add_argument("--steps", default="10,50,100", help="percentages (default 10,50,100)")
    p.add_argument("--bake", default="5m", help="time each step bakes: 30s, 5m, 1h (default 5m)")
    p.add_argument("--max-error-rate", type=float, default=0.01, help="5xx share (default 0.01)")
    p.add_argument("--max-p99-ms", type=float, help="p99 latency limit of the version, in ms")
    p.add_argument(
        "--min-agreement",
        type=float,
        help="first shadow the version and require this share of rows with the same label",
    )
    p.add_argument(
        "--shadow-sample", type=float, default=1.0, help="share copied to the shadow (default 1)"
    )
    p.add_argument(
        "--min-requests",
        type=int,
        default=20,
        help="requests the version answers before a step may advance (default 20)",
    )
    p.add_argument(
        "--metrics",
        default=DEFAULT_METRICS,
        help=f"the gateway's /metrics URL, or 'cloudwatch' (default {DEFAULT_METRICS})",
    )
    p.add_argument("--token", default=os.environ.get("AIAAS_API_TOKEN"), help="gateway token")
    p.add_argument("--json", action="store_true", help="status as JSON")
    p.set_defaults(func=cmd_rollout)


def cmd_rollout(args: argparse.Namespace) -> int:
    first, second = args.first, args.second
    alias = names.alias_name(args.alias)
    if first in ACTIONS:
        return _status(args, names.model_name(second), alias, abort=first == "abort")
    model, version = names.model_name(first), names.version_name(second)
    plan = RolloutPlan(
        steps=parse_steps(args.steps),
        bake_s=parse_duration(args.bake),
        max_error_rate=args.max_error_rate,
        max_p99_ms=args.max_p99_ms,
        min_agreement=args.min_agreement,
        min_requests=args.min_requests,
        shadow_sample=args.shadow_sample,
    )
    engine = RolloutEngine(Registry(open_store(args.store)), _source(args))
    actor = RuntimeSettings.from_env().actor
    record = engine.start(model, version, plan, alias=alias, actor=actor)
    return _follow(engine, record, actor)


def _follow(engine: RolloutEngine, record: RolloutRecord, actor: str) -> int:
    """Check until the rollout ends, printing each log entry as it is written."""
    shown = 0
    try:
        while True:
            shown = _print_log(record, shown)
            if not record.running:
                return 0 if record.state == "succeeded" else 1
            time.sleep(engine.wait_s(record))
            record = _checked(engine, record, actor, shown)
    except KeyboardInterrupt:
        record = engine.abort(record.model, record.alias, actor)
        _print_log(record, shown)
        return 130


def _checked(engine: RolloutEngine, record: RolloutRecord, actor: str, shown: int) -> RolloutRecord:
    """The next check; if it cannot be made (the metrics unreadable, the store down), the split
    is not left live with no one watching it: the rollout is aborted first, saying why."""
    try:
        return engine.check(record.model, record.alias, actor)
    except Exception as exc:
        why = (
            f"a check failed ({getattr(exc, 'message', None) or exc}); traffic back on the baseline"
        )
        try:
            _print_log(engine.abort(record.model, record.alias, actor, why), shown)
        except Exception:  # the abort failed too: the first error is the one to report
            log.exception("rollout of %s@%s: could not abort it", record.model, record.alias)
        raise


def _print_log(record: RolloutRecord, shown: int) -> int:
    for entry in record.log[shown:] if shown <= len(record.log) else record.log[-1:]:
        print(f"{entry['time']}  {entry['event']:11} {entry['message']}", flush=True)
    return len(record.log)


def _status(args: argparse.Namespace, model: str, alias: str, *, abort: bool) -> int:
    registry = Registry(open_store(args.store))
    if abort:
        engine = RolloutEngine(registry, _NoMetrics())
        record = engine.abort(model, alias, RuntimeSettings.from_env().actor)
    else:
        registry.versions(model)  # an unknown model reads as such
        record = RolloutBook(registry.store).require(model, alias)
    if args.json:
        print(json.dumps(record.to_dict(), indent=2))
        return 0
    for line in describe(record):
        print(line)
    return 0


def describe(record: RolloutRecord) -> list[str]:
    """The rollout, its latest check and its log, for a terminal."""
    share = "shadow" if record.step < 0 else f"{record.share():.0%}"
    lines = [
        f"{record.model}@{record.alias}: {record.baseline} -> {record.candidate}, "
        f"{record.state.value} (step {share}, rollout {record.id}, by {record.started_by})"
    ]
    check: dict[str, Any] = record.last_check or {}
    if check:
        lines.append(f"  last check {check.get('time')}: {check.get('reason')}")
    lines += [f"  {e['time']}  {e['event']:11} {e['message']}" for e in record.log]
    return lines


def rollout_lines(registry: Registry, model: str, entries: int = 3) -> list[str]:
    """`aiaas versions`' short view: each alias's latest rollout and its last log entries."""
    lines = []
    for record in RolloutBook(registry.store).all(model):
        lines.append(f"rollout {describe(record)[0]}")
        lines += [f"  {e['time']}  {e['event']:11} {e['message']}" for e in record.log[-entries:]]
    return lines


def _source(args: argparse.Namespace) -> MetricsSource:
    if args.metrics == "cloudwatch":
        from functions.runtime.rollout.cloudwatch import CloudWatchMetrics

        return CloudWatchMetrics.from_env(os.environ)
    from infra.local.rollout_metrics import GatewayMetricsSource, http_scrape

    try:
        return GatewayMetricsSource(http_scrape(args.metrics, args.token))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


class _NoMetrics:
    """Aborting reads no metrics."""

    def begin(self, model: str, since: float) -> None:
        return None

    def measure(self, model: str, baseline: str, candidate: str, since: float) -> Any:
        raise BadRequest("an abort reads no metrics")
