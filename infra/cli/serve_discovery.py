"""`aiaas serve`'s discovery: the predict functions of models published after it started."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from functions.runtime.errors import AiaasError
from functions.runtime.registry import Registry
from functions.runtime.store import open_store
from infra.local.functions import function_instances
from infra.local.stack import DEFAULT_SELECTOR, stack_functions
from infra.template import FunctionSpec, functions, load_template

if TYPE_CHECKING:
    from infra.cli.local_commands import ServeConfig
    from infra.local.gateway import Gateway

RESCAN_SECONDS = 2.0
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
    """Adds predict functions for models published after the gateway started (rate-limited)."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.gateway: Gateway | None = None
        self._next = 0.0
        self._lock = threading.Lock()
        self._failure: AiaasError | None = None  # the last scan's, while the store is down

    def __call__(self) -> bool:
        """True when it added functions. The store's error while it cannot be listed, the
        last one again until the next scan, so an outage is a steady 503 (not one 503, then
        404s for models that may well exist)."""
        if self.gateway is None or self.config.models is not None:
            return False
        if time.monotonic() < self._next:
            if self._failure is not None:  # a fresh traceback: re-raised as is, it would grow
                raise self._failure.with_traceback(None)  # by a frame a request (with locals)
            return False
        with self._lock:
            self._next = time.monotonic() + RESCAN_SECONDS
            config = self.config
            try:
                specs = template_functions(
                    config.template, config.store_uri, selector=config.selector
                )
            except AiaasError as exc:
                log.warning("cannot look for models published since the start: %s", exc.message)
                self._failure = exc
                raise
            self._failure = None
            new = {k: v for k, v in specs.items() if k not in self.gateway.functions}
            if not new:
                return False
            self.gateway.add_functions(function_instances(new, config.env))
            return True
