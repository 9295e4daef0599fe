"""What one `aiaas serve` worker is given (`ServeConfig`, read once from the command line by
local_commands.py) and the gateway app it builds from it after the fork (`build_app`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from functions.runtime.settings import env_flag, env_number
from functions.runtime.store import open_store
from infra.cli.serve_discovery import ModelDiscovery, template_functions
from infra.local.expiry import DailyExpiry
from infra.local.functions import function_instances
from infra.local.gateway import Gateway
from infra.local.resume_claim import ResumeClaim, resume_env
from infra.local.server import ServerLimits
from infra.local.token_file import TokenFile

if TYPE_CHECKING:
    from infra.local.app import GatewayApp


@dataclass(frozen=True)
class ServeConfig:
    """Everything a worker process needs to build its gateway, read once from the command line."""

    template: Path | None  # None: the built-in functions (infra/local/stack.py)
    store_uri: str
    env: dict[str, str]  # the functions' variables, applied only while each function inits
    models: list[str] | None
    selector: str
    tokens: tuple[str, ...] | None  # None: no auth; else every one accepted
    limits: ServerLimits
    metrics_dir: Path | None = None  # several workers: they sum their metrics in its files
    workers: int = 1  # --workers
    # The models the start found (none while the store was unreachable): each worker builds
    # these, not waiting on a store that is away; the rest come by discovery on first call.
    listed: tuple[str, ...] | None = None
    listing: bool = False  # the start's walk outlasted its wait: each worker walks the store
    trusted_proxies: tuple[str, ...] = ()  # --trusted-proxy: infra/local/forwarded.py
    cors_origins: tuple[str, ...] = ()  # --cors-origins: infra/local/cors.py
    token_file: Path | None = None  # `tokens` came from it; each worker watches it
    token_file_key: tuple[int, int, int, int, int] | None = None  # its stat when they were read
    loopback: bool = True  # it listens on loopback only: with no token, Host is checked too
    port: int = 0  # --port: a proxied request whose Host names it came to the port directly
    resume: ResumeClaim | None = None  # one worker lines up the batch jobs the last stop left
    expiry: DailyExpiry | None = None  # a directory store's: one worker at a time expires it


def build_app(config: ServeConfig) -> GatewayApp:
    """The gateway app of one worker: its own function instances, loaded after the fork."""
    from infra.local.app import BodyLimits, GatewayApp
    from infra.local.gone_series import GONE_AFTER_ENV, GONE_AFTER_S, PrunedVersions
    from infra.local.metrics import GatewayMetrics
    from infra.local.open_guard import OpenGuard

    names = config.models if config.models is not None else config.listed
    names = None if names is None else list(names)
    specs = template_functions(config.template, config.store_uri, names, config.selector)
    env = {**config.env, **resume_env(config.resume)}
    discovery = ModelDiscovery(config)
    metrics = GatewayMetrics(
        config.metrics_dir,
        log_requests=env_flag(config.env, "AIAAS_LOG_REQUESTS"),
        workers=config.workers,
        # the series of pruned versions go, once they stopped changing
        gone=PrunedVersions(
            config.store_uri, after_s=env_number(config.env, GONE_AFTER_ENV, GONE_AFTER_S)
        ),
    )
    if config.metrics_dir is not None:
        # Another worker may answer the scrape: samples must reach the shared files from the
        # first request, not wait in this worker for the deferred start.
        metrics.start()
    gateway = Gateway(
        function_instances(specs, env),
        tokens=config.tokens or (),
        on_miss=discovery,
        metrics=metrics,
        open_guard=OpenGuard(check_host=config.loopback, port=config.port),
    )
    if config.token_file is not None and config.tokens:
        watch = TokenFile(
            config.token_file, config.tokens, gateway.accept_tokens, config.token_file_key
        )
        watch.check()  # changed since the start read it (a worker started later, a respawn)?
        watch.start()
    discovery.gateway = gateway
    if config.listing:  # finished in the background; a call meanwhile waits for it
        discovery.start()
    if config.expiry is not None:  # a thread of this worker's, started after the fork
        config.expiry.start(open_store(config.store_uri))
    limits = BodyLimits(gateway.max_body, config.limits.body_timeout_s)
    return GatewayApp(
        gateway,
        limits,
        trusted_proxies=frozenset(config.trusted_proxies),
        max_in_flight=config.limits.max_in_flight,
        cors_origins=config.cors_origins,
    )
