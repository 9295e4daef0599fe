"""What `aiaas serve` checks and finds before it serves: its settings, the store's models."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from functions.runtime import names
from functions.runtime.aside import run_aside
from functions.runtime.errors import StoreUnavailable, StoreUnreachable
from functions.runtime.registry import Registry
from functions.runtime.served_record import ServedRecords
from functions.runtime.settings import (
    DEFAULT_LOCAL_STORE,
    RuntimeSettings,
    env_flag,
    env_number,
    max_payload_bytes,
    max_upload_bytes,
    shadow_cpus,
    shadow_priority,
)
from functions.runtime.store import LOCAL_BUCKET, ObjectStore
from infra.local import lambda_logs
from infra.local.loaded_models import max_models

log = logging.getLogger("aiaas.gateway")  # the gateway's: model discovery runs on its behalf
# A store answers its first listing in ~0.1 s; one that does not within this is taken as away.
START_LIST_WAIT_S = 5.0
BANNER_MODELS = 20  # the models whose routes the banner lists, then how many more


@dataclass(frozen=True)
class StartListing:
    """What the start found. `models`: to serve from the start. `unreachable`: the store did
    not answer. `slow`: it answered (`folders` model folders) but walking every key of every
    version (functions/runtime/catalog.py) outlasted START_LIST_WAIT_S: each worker finishes
    the walk in the background and routes its models once it completes."""

    models: list[str]
    unreachable: bool = False
    slow: bool = False
    folders: int = 0


def listed_at_start(store: ObjectStore, models: list[str] | None) -> StartListing:
    """The models to serve from the start. A store that does not answer (S3 or the network at
    the edge away) is served as one with no models yet, not an exit: under a supervisor that
    would be a restart loop for as long as it is away, where discovery picks each model up on
    first call once it answers. One that hangs (packets dropped) is the same once
    START_LIST_WAIT_S passes: it held the start, port closed to the liveness probe, for the S3
    client's timeouts and retries (30 s x 5 by default). Whether it answers is its first,
    cheap listing's say (the model folders: a request per 1,000 models), not the whole walk's:
    a store of ~20,000 keys, answering every page at once, took 8 s to walk on moto and was
    reported "not reachable", serving nothing. S3 answering 5xx or throttling past the retries
    is served as away too. Other store errors (a bucket that does not exist, access denied) are
    the operator's to fix: refused."""
    if models is not None:
        return StartListing(models)
    folders: list[list[str] | Exception] = []
    listed: list[list[str] | Exception] = []

    def list_models() -> None:
        for step, out in ((models_folders, folders), (Registry(store).models, listed)):
            try:
                out.append(step())
            except Exception as exc:  # raised below, in the serve command
                out.append(exc)
                return

    def models_folders() -> list[str]:
        return [name for name in store.list_dirs("models") if names.is_model_name(name)]

    run_aside(list_models, name="aiaas-list-models", wait=START_LIST_WAIT_S)
    answer = listed[0] if listed else folders[0] if folders else None
    if answer is None:
        log.warning(
            "the model store is not reachable at start: %s did not answer within %g s",
            store.uri,
            START_LIST_WAIT_S,
        )
        return StartListing([], unreachable=True)
    # A 5xx or throttling past the retries (a regional S3 spell) is S3's to mend, as its
    # silence is: refused, every pod restart under a supervisor was a crash loop meanwhile.
    if isinstance(answer, StoreUnreachable | StoreUnavailable):
        log.warning("the model store is not reachable at start: %s", answer.message)
        return StartListing([], unreachable=True)
    if isinstance(answer, Exception):
        raise answer
    if not listed:  # it answers, but the walk is long: the workers finish it
        log.warning(
            "listing the models of %s is taking longer than %g s (%d model folders): they are "
            "served once the listing completes",
            store.uri,
            START_LIST_WAIT_S,
            len(answer),
        )
        return StartListing([], slow=True, folders=len(answer))
    return StartListing(answer)


def recorded_at_start(start: StartListing, store_uri: str, env: Mapping[str, str]) -> StartListing:
    """A store away at the start: the models the cache holds a local record of serve their
    recorded version (functions/runtime/served_record.py), not nothing until it answers."""
    if not start.unreachable:
        return start
    settings = RuntimeSettings.from_env(env)
    records = ServedRecords(settings.cache_dir, store_uri, settings.s3_endpoint)
    return replace(start, models=records.models())


def unreachable_line(store_uri: str, recorded: list[str]) -> str:
    """The banner's line for a store away at the start."""
    if not recorded:
        return (
            f"  no models yet: the store {store_uri} is not reachable now; each model is picked "
            "up on first call once it answers (/v2/health/ready is 503 until then)"
        )
    return (
        f"  the store {store_uri} is not reachable now: the models above serve the version "
        "they last served here, from the local cache (sha256 checked), until it answers; "
        "others are picked up on first call once it answers (/v2/health/ready is 503 until then)"
    )


def route_lines(models: list[str]) -> list[str]:
    """The banner's lines of routes: the first `BANNER_MODELS` models', then a count (a store
    of 401 models printed 401 lines, the banner's first one scrolled off any terminal)."""
    lines = [
        f"  POST /models/{m}/predict   POST /v2/models/{m}/infer" for m in models[:BANNER_MODELS]
    ]
    if len(models) > BANNER_MODELS:
        more = len(models) - BANNER_MODELS
        lines.append(f"  ... and {more} more model(s) (`aiaas models` lists them), routed alike")
    return lines


def check_function_settings(env: Mapping[str, str]) -> None:
    """The settings the functions read at their cold start (the predict function's own too,
    functions/predict/service.py), read now: a bad value (AIAAS_MODEL_LOAD=ram) is refused
    before serving, not answered with a 502 on every request. The batch settings too: the
    control plane reads them for a directory store's submitted jobs (functions/control/jobs.py)."""
    from functions.runtime.batch.settings import BatchSettings

    RuntimeSettings.from_env(env)
    BatchSettings.from_env(env)
    lambda_logs.serve_format(env)
    max_payload_bytes(env)
    max_upload_bytes(env)  # the control plane's, read at its import
    shadow_cpus(env)
    shadow_priority(env)
    env_number(env, "AIAAS_DRIFT_FLUSH_SECONDS", 0)
    env_number(env, "AIAAS_METRICS_GONE_AFTER_S", 0)  # /metrics: infra/local/gone_series.py
    max_models(env)  # AIAAS_SERVE_MAX_MODELS: infra/local/loaded_models.py
    for switch in ("AIAAS_LOG_REQUESTS", "AIAAS_DISABLE_METRICS", "AIAAS_TRACING"):
        env_flag(env, switch)


def missing_store_line(store: ObjectStore) -> str | None:
    """The banner's line for a store directory named but not there (a typo, most often), else
    None. It is not made here: the first publish makes it, and made now it would hide the typo
    from the next command too. (A file there is refused when the store is opened.)"""
    root = Path(store.uri)
    if store.location.bucket != LOCAL_BUCKET or root.is_dir():  # S3, or a directory there
        return None
    if root == Path(DEFAULT_LOCAL_STORE).resolve():  # nothing published here yet
        return None
    return (
        f"  no models: the store directory {store.uri} does not exist (mistyped --store or "
        "AIAAS_STORE?); the first `aiaas publish` to it makes it, and a model published there "
        "is picked up on first call"
    )


def plain_http_line(loopback: bool, tokens: bool, proxied: bool) -> str | None:
    """serve's start line for a token sent over plain HTTP between machines, else None: serve
    speaks no TLS, so on an address other machines reach, with no proxy named to put TLS in
    front, every caller's bearer token (and every request) crosses the network readable; the
    README's "other machines" example did so and nothing at the start said it (hunt_security2)."""
    if loopback or not tokens or proxied:
        return None
    return (
        "  plain HTTP: the bearer token and every request cross the network unencrypted; "
        "beyond a trusted network put a TLS proxy in front, serve on 127.0.0.1 and name it "
        "with --trusted-proxy (docs/serve.md, Behind a reverse proxy)"
    )
