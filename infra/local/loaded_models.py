"""How many models one `aiaas serve` worker keeps loaded: `AIAAS_SERVE_MAX_MODELS`.

Each model is a function instance of its own (functions.py), whose pool is bounded by the
function's memory as if it had a container to itself, as it does in Lambda. A serve holds every
one of them in one process, and its warm-up loads them all at the start: 25 models of 20 MB
took 3.2 GB before any request, 401 tiny ones 174 MB (hunt_scale 1). With the setting, the
warm-up loads that many models, and a call to a model not loaded once that many are retires
the least recently called model's function (its module goes, sessions and all, as Lambda
reclaims an idle container; what it holds is written aside, its shadow replay process
ends): its next call is a cold start.
A function being called is never retired: calls to more models at once than the bound hold
them all until they finish. Unset or 0: no bound (each model's `AIAAS_MAX_VERSIONS` still holds).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from functions.runtime.heap import give_back_freed
from functions.runtime.settings import env_number

if TYPE_CHECKING:  # functions.py hands its instances here
    from infra.local.functions import LocalFunction

MAX_MODELS_ENV = "AIAAS_SERVE_MAX_MODELS"
COLLECT_EVERY_S = 1.0  # a collection takes ~70 ms in a serve of 400 models: at most one a second
log = logging.getLogger("aiaas.gateway")


def max_models(env: Mapping[str, str]) -> int:
    """`AIAAS_SERVE_MAX_MODELS`: a whole number, 0 (the default) for no bound."""
    return int(env_number(env, MAX_MODELS_ENV, 0, whole=True))


class LoadedModels:
    """The bound on the model functions of `functions` (a gateway's, by name) kept initialised."""

    def __init__(self, functions: Mapping[str, LocalFunction], most: int = 0) -> None:
        self.functions, self.most = functions, most  # most 0: no bound
        self._lock = threading.Lock()  # one retirement round at a time
        self._collected = 0.0  # monotonic: the last `_collect`
        self._due: threading.Timer | None = None  # a `_collect` to come

    @classmethod
    def from_env(cls, functions: Mapping[str, LocalFunction]) -> LoadedModels:
        """The bound `aiaas serve` was started with (checked at its start: serve_start.py)."""
        return cls(functions, max_models(os.environ))

    def admit(self, function: LocalFunction) -> None:
        """Before a call of `function`: a model's not loaded, with the bound's worth loaded,
        retires the least recently called of the others (never one being called)."""
        if not self.most or not function.is_model or function.warm:
            return
        with self._lock:
            functions = list(self.functions.values())  # discovery may add some meanwhile
            loaded = [f for f in functions if f.is_model and f.warm and f is not function]
            excess = wanted = len(loaded) + 1 - self.most
            for other in sorted(loaded, key=lambda f: f.last_called):
                if excess <= 0:
                    break
                if other.retire(then=self._released):
                    excess -= 1
                    idle = time.monotonic() - other.last_called
                    last = f"last called {idle:.0f} s ago" if other.last_called else "not called"
                    log.warning(  # by model name: the user knows `iris`, not `Predictiris`
                        "unloaded model %s (%s) to load model %s: %d models loaded (%s); its "
                        "next call loads it again",
                        _model(other),
                        last,
                        _model(function),
                        self.most,
                        MAX_MODELS_ENV,
                    )
            if excess < wanted:
                self._collect_soon()

    def _released(self) -> None:
        """A retired function's `release()` ended (on a thread of its own): its module, held
        until then, can be freed now."""
        with self._lock:
            self._collect_soon()

    def _collect_soon(self) -> None:
        """`_collect` now, or within `COLLECT_EVERY_S` of the last one (under `_lock`)."""
        wait = self._collected + COLLECT_EVERY_S - time.monotonic()
        if wait <= 0:
            self._collect()
        elif self._due is None:
            self._due = threading.Timer(wait, self._collect)
            self._due.daemon = True
            self._due.start()

    def _collect(self) -> None:
        """Free what retired functions held. A module's functions and globals refer to each
        other, so only the collector frees them, and glibc then keeps what they held in its
        arenas: 25 models of 20 MB, called in turn with 3 loaded at most, left 2.3-4.7 GB
        resident without this, 0.46 GB with it."""
        gc.collect()
        give_back_freed()
        self._collected, self._due = time.monotonic(), None  # races cost one more at worst


def _model(function: LocalFunction) -> str:
    """The model a predict function serves (its template function's name if none is set)."""
    return function.env.get("AIAAS_MODEL") or function.spec.logical_id
