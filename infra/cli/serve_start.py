"""What `aiaas serve` checks and finds before it serves: its settings, the store's models."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from functions.runtime.aside import run_aside
from functions.runtime.errors import StoreUnreachable
from functions.runtime.registry import Registry
from functions.runtime.settings import (
    DEFAULT_LOCAL_STORE,
    RuntimeSettings,
    env_flag,
    env_number,
    max_payload_bytes,
    shadow_cpus,
)
from functions.runtime.store import LOCAL_BUCKET, ObjectStore
from infra.local import lambda_logs

log = logging.getLogger("aiaas.gateway")  # the gateway's: model discovery runs on its behalf
# A store lists its models in ~0.1 s; one that hangs is taken as away after this.
START_LIST_WAIT_S = 5.0


def listed_at_start(store: ObjectStore, models: list[str] | None) -> tuple[list[str], bool]:
    """(the models to serve from the start, whether the store was unreachable). A store that
    does not answer (S3 or the network at the edge away) is served as one with no models yet,
    not an exit: under a supervisor that would be a restart loop for as long as it is away,
    where discovery picks each model up on first call once it answers. One that hangs (packets
    dropped) is the same once START_LIST_WAIT_S passes: it held the start, port closed to the
    liveness probe, for the S3 client's timeouts and retries (30 s x 5 by default). Other store
    errors (a bucket that does not exist, access denied) are the operator's to fix: refused."""
    if models is not None:
        return models, False
    listed: list[list[str] | Exception] = []

    def list_models() -> None:
        try:
            listed.append(Registry(store).models())
        except Exception as exc:  # raised below, in the serve command
            listed.append(exc)

    run_aside(list_models, name="aiaas-list-models", wait=START_LIST_WAIT_S)
    if not listed:
        log.warning(
            "the model store is not reachable at start: %s did not answer within %g s",
            store.uri,
            START_LIST_WAIT_S,
        )
        return [], True
    if isinstance(listed[0], StoreUnreachable):
        log.warning("the model store is not reachable at start: %s", listed[0].message)
        return [], True
    if isinstance(listed[0], Exception):
        raise listed[0]
    return listed[0], False


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
    shadow_cpus(env)
    env_number(env, "AIAAS_DRIFT_FLUSH_SECONDS", 0)
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
