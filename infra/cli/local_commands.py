"""`aiaas serve`: the local API gateway (`aiaas invoke` is in invoke_command.py)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import faulthandler
import ipaddress
import os
import time
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path

from functions.runtime.refs import DEFAULT_VERSION, selector_problem
from functions.runtime.settings import (
    LOG_SETUP_ENV,
    RuntimeSettings,
    env_flag,
)
from functions.runtime.store import LOCAL_BUCKET, ObjectStore, open_store
from infra.cli.arg_types import (
    browser_origins,
    count,
    model_list,
    port,
    seconds,
    trusted_proxies,
    whole_days,
)
from infra.cli.serve_app import ServeConfig, build_app
from infra.cli.serve_start import (
    START_LIST_WAIT_S,
    check_function_settings,
    listed_at_start,
    missing_store_line,
    plain_http_line,
    recorded_at_start,
    route_lines,
    unreachable_line,
)
from infra.cli.serve_workers import WORKERS_PER_CPU, serve_workers
from infra.local import lambda_logs
from infra.local.address import check_exposure, listen_address
from infra.local.cors import refused_without_token
from infra.local.ending import stop_while_starting
from infra.local.expiry import (
    CAPTURE_DAYS,
    MONITORING_DAYS,
    DailyExpiry,
    ExpiryTurn,
    Retention,
)
from infra.local.functions import export_native_settings
from infra.local.resume_claim import ResumeClaim
from infra.local.server import ServerLimits, end_process
from infra.local.stack import GLOBAL_ENVIRONMENT
from infra.local.token_file import TOKEN_FILE_ENV, stat_key, tokens_at_start
from infra.template import load_template

# Variables a local run passes from the shell to every function (the rest come from the template).
PASSTHROUGH = ("AIAAS_CACHE_DIR", "AIAAS_ALIAS_TTL", "AIAAS_ORT_THREADS", "AIAAS_MAX_BATCH", "AIAAS_MAX_RUN_SECONDS",
               "AIAAS_MAX_PAYLOAD_BYTES", "AIAAS_LOG_REQUESTS", "AIAAS_DISABLE_METRICS", "AIAAS_MAX_VERSIONS",
               "AIAAS_METRICS_GONE_AFTER_S", "POWERTOOLS_LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL", "AWS_ENDPOINT_URL",
               "AWS_ENDPOINT_URL_S3", "AWS_REGION",
               "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")  # fmt: skip


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="run the API locally: template routes -> the same handlers",
        description="A local API gateway with the stack's HttpApi routes (template.yaml's, "
        "built in): one function instance per published model, real HTTP API v2.0 events.",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address or host name to bind (default 127.0.0.1; 0.0.0.0 for every interface)",
    )
    p.add_argument("--port", type=port, default=8080, help="port (default 8080)")
    p.add_argument(
        "--workers",
        type=serve_workers,
        default=1,
        help="processes sharing the port (default 1: this process, no fork; at most "
        f"{WORKERS_PER_CPU} per CPU, and what the memory holds)",
    )
    p.add_argument(
        "--token",
        default=os.environ.get("AIAAS_API_TOKEN"),
        help="require 'Authorization: Bearer TOKEN' (default: $AIAAS_API_TOKEN, better than "
        "this flag, whose value every user of the machine sees in `ps`; unset = open)",
    )
    p.add_argument(
        "--token-file",
        default=os.environ.get(TOKEN_FILE_ENV),
        metavar="PATH",
        help="require any of the tokens in this file, one a line, re-read within a second of "
        f"a change: rotation without a restart (default: ${TOKEN_FILE_ENV}; not with --token)",
    )
    p.add_argument(
        "--no-auth",
        action="store_true",
        help="serve with no token on an address other machines reach (refused without it)",
    )
    p.add_argument(
        "--models",
        type=model_list,
        help="comma-separated models to serve, and no others (default: every model in the "
        "store, and any published while it runs); the control plane still acts on every "
        "model of the store: a team each needs a store each (docs/serve.md)",
    )
    p.add_argument(
        "--selector",
        type=selector,
        default="",
        help=f"version selector for every model: @alias or :version (default: for each model, {DEFAULT_VERSION})",
    )
    p.add_argument(
        "--template",
        type=Path,
        help="read functions and routes from this SAM template (default: the built-in copy of "
        "the project's template.yaml)",
    )
    p.add_argument("--metrics", action="store_true", help="print the functions' EMF metric lines")
    defaults = ServerLimits()
    p.add_argument(
        "--header-timeout",
        type=seconds,
        default=defaults.header_timeout_s,
        help="seconds a request head may take, also the idle keep-alive timeout (default %(default)s)",
    )
    p.add_argument(
        "--body-timeout",
        type=seconds,
        default=defaults.body_timeout_s,
        help="seconds a request body may take to arrive (default %(default)s)",
    )
    p.add_argument(
        "--max-in-flight",
        type=count,
        default=defaults.max_in_flight,
        help="requests a worker has in flight at once (idle connections do not count); one "
        "more gets a 503 with Retry-After (default %(default)s)",
    )
    p.add_argument(
        "--trusted-proxy",
        type=trusted_proxies,
        metavar="IP[,IP]",
        help="a reverse proxy in front (e.g. 127.0.0.1 for nginx on this host): its requests "
        "are recorded as from the last X-Forwarded-For address it added (docs/serve.md, "
        "Behind a reverse proxy; default: none, the peer's address is the caller's)",
    )
    p.add_argument(
        "--cors-origins",
        type=browser_origins,
        metavar="ORIGIN[,ORIGIN]",
        help="origins whose pages may call it (e.g. http://localhost:5173), as the stack's "
        "CorsAllowOrigins (docs/serve.md, Browser apps; default: none, no CORS headers)",
    )
    p.add_argument(
        "--capture-days",
        type=whole_days,
        help="a directory store: days captured requests are kept, as the stack's bucket keeps "
        f"them (default {CAPTURE_DAYS}; 0 keeps them forever; on S3 the bucket's lifecycle "
        "rules decide)",
    )
    p.add_argument(
        "--monitoring-days",
        type=whole_days,
        help=f"a directory store: days drift snapshots are kept (default {MONITORING_DAYS}; 0: "
        "forever)",
    )
    p.set_defaults(func=cmd_serve)


def _expire(store: ObjectStore, store_uri: str, args: argparse.Namespace) -> DailyExpiry | None:
    """A directory store's daily expiry of captures and drift snapshots, as the stack's bucket
    rules do on S3 (the workers start it, after they fork); on S3, say that the days given do
    not apply (a MinIO at the edge without the stack's rules kept captures for ever while its
    user believed --capture-days 7)."""
    capture, monitoring = args.capture_days, args.monitoring_days
    if store.location.bucket == LOCAL_BUCKET:
        return DailyExpiry(
            Retention(
                CAPTURE_DAYS if capture is None else capture,
                MONITORING_DAYS if monitoring is None else monitoring,
            ),
            ExpiryTurn() if args.workers > 1 else None,  # one worker needs no turn
        )
    given = [flag for flag, days in (("--capture-days", capture), ("--monitoring-days", monitoring))
             if days is not None]  # fmt: skip
    if given:
        lambda_logs.say(
            f"  note: {' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to a "
            f"directory store; {store_uri} expires objects by its bucket's lifecycle rules (the "
            "stack's expire-capture and expire-monitoring; set such rules yourself on another "
            "S3 server)"
        )
    return None


def selector(text: str) -> str:
    """An argparse type: '' (each model's default, refs.DEFAULT_VERSION), @alias or
    :version. 'staging' without its @ was glued to every model's name ('irisstaging')."""
    problem = selector_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def local_overrides(store_uri: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
    env["AIAAS_STORE"] = store_uri
    # A process a function starts (the shadow replay) writes its lines as the functions' own.
    env[LOG_SETUP_ENV] = f"{lambda_logs.__name__}:{lambda_logs.install.__name__}"
    env.update(extra or {})
    return env


def cmd_serve(args: argparse.Namespace) -> int:
    from infra.local.server import serve

    started = time.time()  # inputs placed since are submissions to this server
    # Stat before the read: a change made while it reads shows as a change.
    token_file_key = stat_key(Path(args.token_file)) if args.token_file else None
    tokens = tokens_at_start(args.token, args.token_file)
    address = listen_address(args.host, args.port)
    check_exposure(args.host, address, tokens is not None, args.no_auth)
    if args.template is not None:  # read (and cached) before the banner: one that is no
        load_template(args.template)  # template was a traceback in each worker after it
    # A crash in native code (onnxruntime on a hostile model, a wheel's bug) leaves the Python
    # stack of every thread in the log instead of a bare exit status.
    faulthandler.enable()
    export_native_settings(GLOBAL_ENVIRONMENT)  # before granian's threads and the warm-up
    store = open_store(args.store)
    missing = missing_store_line(store)
    store_uri = store.uri
    # The operator's own switch is checked before serve's "true" takes its place (=2 was ignored).
    env_flag(os.environ, "AIAAS_DISABLE_METRICS")
    env = local_overrides(store_uri, {} if args.metrics else {"AIAAS_DISABLE_METRICS": "true"})
    check_function_settings({**os.environ, **env})
    # Serve's own warnings (where the metrics went, a stale directory) as the functions' JSON
    # lines on stdout: one format for a log shipper, not a plain stderr line among them.
    lambda_logs.install({**os.environ, **env})
    lambda_logs.use_format(lambda_logs.serve_format(os.environ))
    stop_while_starting()  # granian takes the signals over once it serves
    models: list[str] | None = args.models  # model_list: valid names, each once
    limits = ServerLimits(
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        max_in_flight=args.max_in_flight,
    )
    config = ServeConfig(args.template, store_uri, env, models, args.selector, tokens, limits)
    start = recorded_at_start(listed_at_start(store, models), store_uri, {**os.environ, **env})
    served = start.models
    token_file = Path(args.token_file) if args.token_file is not None else None
    config = dataclasses.replace(
        config,
        listed=tuple(served),
        listing=start.slow,
        trusted_proxies=args.trusted_proxy or (),
        cors_origins=args.cors_origins or (),
        token_file=token_file,
        token_file_key=token_file_key,
        loopback=ipaddress.ip_address(address).is_loopback,
        port=args.port,
        resume=ResumeClaim(started),
    )
    auth = "no auth (set AIAAS_API_TOKEN to require a token)"
    if token_file is not None and tokens:
        auth = (
            f"bearer token required ({len(tokens)} accepted from {token_file}, re-read on change)"
        )
    elif tokens:
        auth = "bearer token required"
    say = lambda_logs.say
    host = f"[{args.host}]" if ":" in args.host else args.host  # an IPv6 address, as URLs write it
    workers = f"  {args.workers} workers" if args.workers > 1 else ""  # each logs its own lines
    say(f"aiaas serve: http://{host}:{args.port}  store {store_uri}  {auth}{workers}")
    for line in route_lines(served):
        say(line)
    refused = refused_without_token(config.cors_origins) if not tokens else None
    if refused:
        say(refused)
    plain = plain_http_line(config.loopback, bool(tokens), bool(config.trusted_proxies))
    if plain:
        say(plain)
    if missing:
        say(missing)
    elif start.slow:
        say(
            f"  no models yet: listing the {start.folders} model folders of {store_uri} is taking "
            f"longer than {START_LIST_WAIT_S:g} s; they are served once it completes (a call "
            "meanwhile waits for it)"
        )
    elif start.unreachable:
        say(unreachable_line(store_uri, served))
    elif not served:
        say(
            "  no models yet: publish one (`aiaas publish model.onnx --name NAME`, or `aiaas train "
            "SPEC --publish`); it is picked up on first call"
        )
    expiry = _expire(store, store_uri, args)
    with shared_metrics_dir(args.workers > 1, env) as directory:
        config = dataclasses.replace(
            config, metrics_dir=directory, workers=args.workers, expiry=expiry
        )
        serve(address, args.port, partial(build_app, config), workers=args.workers, limits=limits)
    # Signalled (SIGTERM, SIGINT): the requests in flight were answered first.
    lambda_logs.say("aiaas serve: stopped")
    end_process(0)


@contextlib.contextmanager
def shared_metrics_dir(shared: bool, env: Mapping[str, str]) -> Iterator[Path | None]:
    """With several workers, a fresh directory for prometheus_client's multiprocess mode, which
    reads it from the environment in each worker (so it is set before they start); removed
    when the server stops, so counts start from zero on every start. Where it lives and how it
    outlasts cleaners: infra/local/metrics_dir.py."""
    if not shared:
        yield None
        return
    from infra.local.metrics_dir import default_parents, metrics_dir

    cache_dir = RuntimeSettings.from_env({"AIAAS_CACHE_DIR": env.get("AIAAS_CACHE_DIR", "")})
    with metrics_dir(default_parents(cache_dir.cache_dir)) as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        yield directory
