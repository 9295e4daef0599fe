"""`aiaas rollout`: shift an alias to a version step by step, judged on per-version metrics,
rolled back at once on a breach; `aiaas rollout status|abort MODEL`.

The loop runs here, in this process: it reads a running `aiaas serve`'s `/metrics` (or, with
`--metrics cloudwatch`, the deployed functions' EMF metrics) and moves the alias in the store,
which the gateway (or every Lambda container, within its alias TTL) picks up. Ctrl-C aborts
the rollout: all traffic back on the version the alias served before.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from typing import Any

from functions.runtime import names
from functions.runtime.errors import BadRequest, Conflict, ModelNotFound, NotFound
from functions.runtime.reason_flag import add_reason, move_reason
from functions.runtime.registry import Registry
from functions.runtime.rollout.attention import attention
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import (
    RolloutPlan,
    parse_duration,
    parse_steps,
    settle_after,
)
from functions.runtime.rollout.preconditions import RolloutPrecondition, rollout_etag
from functions.runtime.rollout.record import RolloutBook, RolloutRecord
from functions.runtime.rollout.settle import settle_s
from functions.runtime.rollout.source import MetricsSource
from functions.runtime.settings import DEFAULT_ALIAS_TTL, RuntimeSettings
from functions.runtime.store import open_store
from infra.cli.arg_types import bake, steps
from infra.cli.misspelled import meant
from infra.cli.rollout_elsewhere import with_elsewhere
from infra.cli.rollout_follow import (
    CHECK_GRACE_S,
    Stopped,
    StopRequest,
    follow,
    say_back,
    stop_on_signals,
)
from infra.cli.rollout_text import describe
from infra.cli.token_ids_change import say_callers_moved
from infra.local.token_file import TOKEN_FILE_ENV

ACTIONS = ("status", "abort", "resume")
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
        metavar="MODEL|status|abort|resume",
        help="MODEL to start a rollout of; status, abort or resume (drive it again after its "
        "process was killed) for a running one",
    )
    p.add_argument("second", metavar="VERSION|MODEL", help="the VERSION to roll out, or the MODEL")
    p.add_argument("--alias", default="production", help="alias to move (default: production)")
    p.add_argument(
        "--steps",
        type=steps,
        default="10,50,100",
        help="rising percentages, the last 100 (default 10,50,100)",
    )
    p.add_argument(
        "--bake",
        type=bake,
        default="5m",
        help="time each step bakes, at least 1s: 30s, 5m, 1h (default 5m)",
    )
    p.add_argument(
        "--max-error-rate",
        type=float,
        default=0.01,
        help="share of 5xx, and of 4xx past the baseline's 4xx rate (default 0.01)",
    )
    p.add_argument(
        "--max-p99-ms", type=float, help="p99 latency limit of the version, in ms (default: none)"
    )
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
        help="requests the version answers before a step may advance (at least 1; default 20)",
    )
    p.add_argument(
        "--metrics",
        default=DEFAULT_METRICS,
        help=f"the gateway's /metrics URL, or 'cloudwatch' (default {DEFAULT_METRICS})",
    )
    p.add_argument(
        "--alias-ttl",
        help="how often the servers re-read the alias: each bake waits that and 1 s for the "
        "re-read: 30s, 1m (default: 0 on a directory store, whose servers see a move at once; "
        f"on S3 $AIAAS_ALIAS_TTL or {DEFAULT_ALIAS_TTL:g} s)",
    )
    p.add_argument(
        "--retry-for",
        default=f"{CHECK_GRACE_S:g}s",
        help="how long failing checks (the gateway restarting, the store unreachable) are "
        f"retried before the rollout aborts (default {CHECK_GRACE_S:g}s)",
    )
    p.add_argument(
        "--token",
        default=os.environ.get("AIAAS_API_TOKEN"),
        help="gateway token (default: $AIAAS_API_TOKEN, better than this flag, whose value "
        "every user of the machine sees in `ps`)",
    )
    p.add_argument(
        "--token-file",
        default=os.environ.get(TOKEN_FILE_ENV),
        metavar="PATH",
        help="send the first token in this file, serve's file of tokens, re-read when it "
        f"changes (default: ${TOKEN_FILE_ENV}; not with --token)",
    )
    p.add_argument(
        "--if-match",
        metavar="ETAG",
        help="start or abort only if the alias's latest rollout is still the one with this "
        "ETag (`status` prints it): refused, changing nothing, when another rollout started "
        "or ended since",
    )
    p.add_argument(
        "--if-none-match",
        metavar="'*'",
        choices=["*"],
        help="'*': start only if no rollout of the alias is running (refused otherwise)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="the rollout's record as JSON (with its etag); a start or resume prints it once "
        "the rollout ends, its log lines going to stderr",
    )
    add_reason(p, "the rollout is started or aborted (each of its moves of the alias keeps it)")
    p.set_defaults(func=cmd_rollout)


def cmd_rollout(args: argparse.Namespace) -> int:
    first, second = args.first, args.second
    alias = names.alias_name(args.alias)
    actor = RuntimeSettings.from_env().actor
    when = _condition(args, first)
    reason = None if first in ("status", "resume") else move_reason(args)
    grace_s = _duration(
        "--retry-for", args.retry_for
    )  # refused before anything moves, not once it has
    if first == "resume":
        model = names.model_name(second)
        engine = RolloutEngine(Registry(open_store(args.store)), _source(args))
        with stop_on_signals() as stop:
            record = engine.resume(model, alias, actor)
            return _driven(args, engine, record, actor, grace_s, stop)
    if first in ACTIONS:
        abort = first == "abort"
        return _status(args, names.model_name(second), alias, abort=abort, when=when, why=reason)
    model, version = names.model_name(first), names.version_name(second)
    registry = Registry(open_store(args.store))
    slip = meant(first, ACTIONS)
    if slip is not None and model not in registry.models():  # `rollout statsu iris`
        raise ModelNotFound(
            f"model {model!r} not found; did you mean: aiaas rollout {slip} {second}"
        )
    if second in ACTIONS:  # `aiaas rollout iris status`: said only "version 'status' not found"
        try:
            registry.manifest(model, version)
        except ModelNotFound as exc:
            raise ModelNotFound(
                f"{exc.message}; did you mean: aiaas rollout {second} {model}"
            ) from None
    try:
        plan = RolloutPlan(
            steps=parse_steps(args.steps),
            bake_s=_duration("--bake", args.bake),
            max_error_rate=args.max_error_rate,
            max_p99_ms=args.max_p99_ms,
            min_agreement=args.min_agreement,
            min_requests=args.min_requests,
            shadow_sample=args.shadow_sample,
            settle_s=_settle_s(args.alias_ttl, registry, model, alias),
        ).checked_new()
    except BadRequest as exc:  # named as the flag the user typed, not the plan's field
        setting, _, rest = exc.message.partition(" must ")
        flag = PLAN_FLAGS.get(setting)
        raise BadRequest(f"{flag} must {rest}" if flag and rest else exc.message) from None
    engine = RolloutEngine(registry, _source(args))
    if args.metrics != "cloudwatch" and plan.max_p99_ms is not None:  # said before any move
        from infra.local.rollout_metrics import p99_limit_inside_bucket

        inside = p99_limit_inside_bucket(plan.max_p99_ms)
        if inside is not None:
            log.warning(inside)
    with stop_on_signals() as stop:  # from before the first move: a stop then still aborts
        try:
            record = engine.start(
                model, version, plan, alias=alias, actor=actor, when=when, reason=reason
            )
        except Stopped as stopped:  # a second signal cut the start short: it aborted it
            return 128 + stopped.signum
        # Said on stderr before the steps: --json keeps stdout one document.
        say_callers_moved(registry, model, [record.baseline], [record.candidate])
        return _driven(args, engine, record, actor, grace_s, stop)


def _driven(
    args: argparse.Namespace,
    engine: RolloutEngine,
    record: RolloutRecord,
    actor: str,
    grace_s: float,
    stop: StopRequest,
) -> int:
    """Drive the rollout to its end (`follow`). With --json the log lines go to stderr and the
    final record is stdout's one JSON document: a start's --json was ignored, its text lines on
    stdout, and `aiaas rollout ... --json > rollout.json` in a pipeline gave `jq` text."""
    if not args.json:
        return follow(engine, record, actor, grace_s, stop)
    with contextlib.redirect_stdout(sys.stderr):
        code = follow(engine, record, actor, grace_s, stop)
    print(_json(engine.registry, engine.book.require(record.model, record.alias)))
    return code


def _json(registry: Registry, record: RolloutRecord) -> str:
    """The record as --json prints it: with its etag, and what the text warns of (attention)
    as `not_watched` and `not_in_effect`, which a pipeline tests as the control plane's GET."""
    flags = attention(registry, record, time.time())
    return json.dumps({**record.to_dict(), "etag": rollout_etag(record), **flags}, indent=2)


def _duration(flag: str, text: str) -> float:
    try:
        return parse_duration(text)
    except BadRequest as exc:  # named as the flag the user typed
        raise BadRequest(f"{flag}: {exc.message}") from None


# A plan's settings by the flags that set them (the control plane's API names the fields).
PLAN_FLAGS = {
    "bake": "--bake",
    "settle_s": "--alias-ttl",
    "max_error_rate": "--max-error-rate",
    "max_p99_ms": "--max-p99-ms",
    "min_agreement": "--min-agreement",
    "min_requests": "--min-requests",
    "shadow_sample": "--shadow-sample",
}


def _settle_s(given: str | None, registry: Registry, model: str, alias: str) -> float:
    """After --alias-ttl when given, else how long the store's servers take to see a move."""
    if given is not None:
        return settle_after(_duration("--alias-ttl", given))
    return settle_s(registry, model, alias)


def _condition(args: argparse.Namespace, first: str) -> RolloutPrecondition:
    """--if-match / --if-none-match, refused where they mean nothing (not silently ignored)."""
    when = RolloutPrecondition(_quoted(args.if_match), args.if_none_match)
    if when and first in ("status", "resume"):
        raise BadRequest(
            f"--if-match and --if-none-match apply to a start or an abort, not {first}"
        )
    if args.reason is not None and first in ("status", "resume"):
        raise BadRequest(f"--reason applies to a start or an abort, not {first}")
    if args.if_none_match and first == "abort":
        raise BadRequest("--if-none-match applies to a start; an abort takes --if-match ETAG")
    return when


def _quoted(etag: str | None) -> str | None:
    """An ETag as given on a command line, where its quotes are easily lost to the shell."""
    if etag is None or etag.strip() == "*" or etag.strip().startswith(('"', "W/")):
        return etag
    return f'"{etag.strip()}"'


def _status(
    args: argparse.Namespace,
    model: str,
    alias: str,
    *,
    abort: bool,
    when: RolloutPrecondition,
    why: str | None = None,
) -> int:
    registry = Registry(open_store(args.store))
    engine = RolloutEngine(registry, _NoMetrics())
    verb = "abort" if abort else "status"
    try:
        if abort:
            actor = RuntimeSettings.from_env().actor
            record = engine.abort(model, alias, actor, when=when, reason=why)
            say_back(engine, record)
        else:
            registry.versions(model)  # an unknown model reads as such
            record = RolloutBook(registry.store).require(model, alias)
    except (Conflict, NotFound) as exc:  # none running here: one on another alias is named
        with_elsewhere(exc, registry.store, model, alias, verb)
        raise
    if args.json:
        print(_json(registry, record))
        return 0
    flags = attention(registry, record, time.time())
    for line in describe(record, flags["not_watched"]):
        print(line)
    if flags["not_in_effect"]:  # a promote or rollback by hand: "running" until a check sees it
        print(
            f"  NOT IN EFFECT: {flags['not_in_effect']}. Its driver's next check ends it as "
            f"superseded; with no driver running, `aiaas rollout abort {model} --alias "
            f"{alias}` ends it and leaves the alias as it is"
        )
    print(f"  etag {rollout_etag(record)} (--if-match: only while this rollout stays as it is)")
    return 0


def _source(args: argparse.Namespace) -> MetricsSource:
    if args.metrics == "cloudwatch":
        from functions.runtime.rollout.cloudwatch import CloudWatchMetrics

        return CloudWatchMetrics.from_env(os.environ)
    from infra.local.client_token import ClientToken
    from infra.local.rollout_metrics import GatewayMetricsSource, http_scrape

    token = ClientToken.from_settings(args.token, args.token_file)  # refused before any move
    try:
        return GatewayMetricsSource(http_scrape(args.metrics, token))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


class _NoMetrics:
    """Aborting reads no metrics."""

    def begin(self, model: str, since: float) -> None:
        return None

    def measure(
        self, model: str, baseline: str, candidate: str, since: float, alias: str = ""
    ) -> Any:
        raise BadRequest("an abort reads no metrics")
