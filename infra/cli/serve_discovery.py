"""`aiaas serve`'s discovery: the predict functions of models published after it started."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from functions.runtime import names
from functions.runtime.errors import AiaasError, StoreUnreachable
from functions.runtime.registry import Registry
from functions.runtime.store import open_store
from infra.local.functions import function_instances
from infra.local.stack import DEFAULT_SELECTOR, stack_functions
from infra.template import FunctionSpec, functions, load_template

if TYPE_CHECKING:
    from infra.cli.serve_app import ServeConfig
    from infra.local.gateway import Gateway

RESCAN_SECONDS = 2.0
MISS_WAIT_S = 30.0  # the most a miss waits for the scan in progress (then a 503)
# Names a miss inside RESCAN_SECONDS may look up on their own in that time (one listing of the
# model's versions each): a flood of unknown names costs the store at most this many listings
# and one scan every RESCAN_SECONDS.
MAX_NAME_CHECKS = 16
log = logging.getLogger("aiaas.gateway")  # the gateway's: model discovery runs on its behalf


def template_functions(
    template: Path | None,
    store_uri: str,
    models: list[str] | None = None,
    selector: str | None = None,
) -> dict[str, FunctionSpec]:
    """The stack's functions with one predict function per model in the store: the built-in
    table, or `template`'s when one is given."""
    names = models if models is not None else Registry(open_store(store_uri)).models()
    if template is None:
        return stack_functions(names, DEFAULT_SELECTOR if selector is None else selector)
    params: dict[str, Any] = {"ModelNames": names}
    if selector is not None:
        params["ModelSelector"] = selector
    return functions(load_template(template), params)


class ModelDiscovery:
    """Adds predict functions for models published after the gateway started (rate-limited:
    a miss within RESCAN_SECONDS of a finished scan is answered from it, unless its path names
    a model not looked up in that time, which is looked up alone; one while a scan runs waits
    for that scan, at most MISS_WAIT_S, where it got an instant false 404)."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.gateway: Gateway | None = None
        self._next = 0.0  # until then a miss is answered from the last finished scan
        self._lock = threading.Lock()  # held by the scan in progress
        self._scans = 0  # scans finished
        self._failure: AiaasError | None = None  # the last scan's, while the store is down
        self._checked: dict[str, float] = {}  # names looked up alone, and when
        self._registry: Registry | None = None  # for those lookups, opened on the first

    def __call__(self, path: str = "") -> bool:
        """True when the routes may have changed (route again). The store's error while it
        cannot be listed, the last one again until the next scan, so an outage is a steady
        503 (not one 503, then 404s for models that may well exist). `path`: the request's,
        whose model, published since the last scan, is found at once (a false 404 "not served
        here" for a model published within RESCAN_SECONDS of any other miss, before)."""
        if self.gateway is None or self.config.models is not None:
            return False
        finished = self._scans
        if not self._lock.acquire(timeout=MISS_WAIT_S):
            why = f"the models of {self.config.store_uri} are still being listed after {MISS_WAIT_S:g} s"
            log.warning("a call for a model not served waited for the listing: %s", why)
            raise StoreUnreachable(why)
        try:
            if self._scans == finished and time.monotonic() >= self._next:
                return self._scan()
            if self._failure is not None:  # a fresh traceback: re-raised as is, it would grow
                raise self._failure.with_traceback(None)  # by a frame a request (with locals)
            if self._scans != finished:  # one finished while this miss waited: its routes
                return True
            return self._published_since(asked_model(path)) and self._scan()
        finally:
            self._lock.release()

    def _published_since(self, name: str | None) -> bool:
        """Whether the store holds a published version of `name` now, looked up alone (one
        listing of its versions), unless it was looked up within RESCAN_SECONDS or
        MAX_NAME_CHECKS others were: then False, the last scan's answer."""
        now = time.monotonic()
        self._checked = {n: t for n, t in self._checked.items() if now - t < RESCAN_SECONDS}
        if name is None or name in self._checked or len(self._checked) >= MAX_NAME_CHECKS:
            return False
        self._checked[name] = now
        if self._registry is None:
            self._registry = Registry(open_store(self.config.store_uri))
        return bool(self._registry.versions(name, missing_ok=True))

    def start(self) -> None:
        """Scan now, in the background (the start's listing outlasted its wait): the routes
        come when it completes, and a miss meanwhile waits for it."""
        self._lock.acquire()  # before the first request: a miss waits for this scan

        def scan() -> None:
            try:
                self._scan()
            except AiaasError:
                pass  # said in the log; a miss re-raises it until the next scan
            finally:
                self._lock.release()

        threading.Thread(target=scan, name="aiaas-discovery", daemon=True).start()

    def _scan(self) -> bool:
        assert self.gateway is not None
        config = self.config
        try:
            specs = template_functions(config.template, config.store_uri, selector=config.selector)
        except AiaasError as exc:
            log.warning("cannot look for models published since the start: %s", exc.message)
            self._failure = exc
            raise
        else:
            self._failure = None
        finally:
            self._scans += 1
            self._next = time.monotonic() + RESCAN_SECONDS
        new = {k: v for k, v in specs.items() if k not in self.gateway.functions}
        if not new:
            return False
        self.gateway.add_functions(function_instances(new, config.env))
        return True


def asked_model(path: str) -> str | None:
    """The model a data-plane path names (`/models/<name>/...`, `/v2/models/<name>...`), if
    it is a valid model name."""
    parts = path.split("/")
    at = 3 if parts[1:3] == ["v2", "models"] else 2 if parts[1:2] == ["models"] else 0
    name = parts[at] if at and len(parts) > at else ""
    return name if names.is_model_name(name) else None
