"""`/metrics` of `aiaas serve`: what its functions and its own refusals report, for Prometheus.

The predict functions report each request and model load here (their `observe` hook, the
same samples they write as EMF in Lambda); the gateway adds what it answers itself (a missing
token, an oversized body, no such route, a function that failed) under model `-`.

prometheus_client is imported once the worker is up (`start`, from the warm-up thread) rather
than before its first answer; samples that arrive before that wait in a list and are replayed,
so none is lost. A scrape starts it at once if it has not started yet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from functions.predict.caller_ids import caller_ids
from functions.predict.metric_names import NO_LABEL, status_class

if TYPE_CHECKING:
    from functions.predict.shadow_tally import ShadowTally
    from infra.local.gone_series import PrunedVersions
    from infra.local.prometheus import PrometheusFamilies

request_log = logging.getLogger("aiaas")  # the predict function's request lines' logger

MAX_PENDING = 100_000  # samples held before start: past this, start now

_Request = tuple[str, str, str, str, float | None, str]
_Load = tuple[str, str, float]
_VersionLoad = tuple[str, str, str, float]
_Capture = tuple[str, str, str, int]


class GatewayMetrics:
    """The metrics of one gateway worker; `shared_dir`: summed over the workers' files there
    (prometheus_client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`)."""

    def __init__(
        self,
        shared_dir: Path | None = None,
        *,
        log_requests: bool = False,
        workers: int = 1,
        gone: PrunedVersions | None = None,
    ) -> None:
        self.shared_dir = shared_dir
        # Judges which pruned versions' series a scrape leaves out (gone_series.py: once
        # they stopped changing). None: every series kept.
        self.gone = gone
        self.workers = workers  # --workers: the alerts read it (one reload starts each once)
        self.log_requests = log_requests  # AIAAS_LOG_REQUESTS: the gateway's answers too
        self._families: PrometheusFamilies | None = None
        self._requests: list[_Request] = []
        self._loads: list[_Load] = []
        self._version_loads: list[_VersionLoad] = []
        self._evictions: list[str] = []  # the model of each
        self._captures: list[_Capture] = []
        self._lock = threading.Lock()
        self._count: Callable[[tuple[str, ...], float | None], None] | None = None
        # Threads whose call was answered 504 meanwhile (offloaded_call.py's `OffloadedCall`): their
        # requests' own counts are dropped. Empty but for those: one truth test a request.
        self.abandoned: set[int] = set()

    # ---- the observer protocol of functions/predict/telemetry.py ---------------------------

    def request(
        self,
        model: str,
        version: str,
        route: str,
        status_class: str,
        seconds: float | None,
        alias: str = NO_LABEL,
    ) -> None:
        if self.abandoned and threading.get_ident() in self.abandoned:
            return
        count = self._count  # started with in-process counts: straight to them (calls less)
        if count is not None:
            count((model, version, route, status_class, alias), seconds)
            return
        families = self._families or self._hold(
            self._requests, (model, version, route, status_class, seconds, alias)
        )
        if families is not None:
            families.request(model, version, route, status_class, seconds, alias)

    def model_load(self, model: str, version: str, seconds: float) -> None:
        families = self._families or self._hold(self._loads, (model, version, seconds))
        if families is not None:
            families.model_load(model, version, seconds)

    def version_load(self, model: str, version: str, outcome: str, seconds: float) -> None:
        families = self._families or self._hold(
            self._version_loads, (model, version, outcome, seconds)
        )
        if families is not None:
            families.version_load(model, version, outcome, seconds)

    def model_eviction(self, model: str) -> None:
        families = self._families or self._hold(self._evictions, model)
        if families is not None:
            families.model_eviction(model)

    def shadow(self, labels: tuple[str, str, str], tally: ShadowTally) -> None:
        """Shadow copies replayed, summed, from the replay's results thread (off any request's
        path): the families are started here if they are not yet."""
        self.start()
        assert self._families is not None
        self._families.shadow(labels, tally)

    def shadow_dropped(self, labels: tuple[str, str, str]) -> None:
        self.start()
        assert self._families is not None
        self._families.shadow_dropped(labels)

    def capture(self, outcome: str, model: str, version: str, lines: int) -> None:
        """Captured lines written, dropped or skipped (on a request's path: held until
        `start` like the requests)."""
        families = self._families or self._hold(self._captures, (outcome, model, version, lines))
        if families is not None:
            families.capture(outcome, model, version, lines)

    # ---- the gateway's own answers ----------------------------------------------------------

    def refused(
        self,
        status: int,
        route: str = NO_LABEL,
        request_id: str = "",
        header: Callable[[str], str | None] | None = None,
    ) -> None:
        """A request the gateway answered itself, before or instead of a function: counted,
        and with AIAAS_LOG_REQUESTS its line as the functions write theirs (a wrong token,
        no such route: API Gateway's access log has them; locally they were in no log), with
        the id the caller got in `apigw-requestid` and its own (`header`: its headers')."""
        self.request(NO_LABEL, NO_LABEL, route, status_class(status), None)
        if self.log_requests:
            fields = {"model": NO_LABEL, "version": NO_LABEL, "route": route, "status": status}
            ids = caller_ids(header) if header is not None else {}
            request_log.info("request", extra={**fields, "request_id": request_id, **ids})

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Import prometheus_client, build the families and replay the samples held so far."""
        if self._families is not None:
            return
        from infra.local.prometheus import PrometheusFamilies

        with self._lock:
            if self._families is not None:
                return
            families = PrometheusFamilies(self.shared_dir, self.workers)
            for request in self._requests:
                families.request(*request)
            for load in self._loads:
                families.model_load(*load)
            for version_load in self._version_loads:
                families.version_load(*version_load)
            for capture in self._captures:
                families.capture(*capture)
            for model in self._evictions:
                families.model_eviction(model)
            self._requests, self._loads, self._captures, self._evictions = [], [], [], []
            self._version_loads = []
            self._families = families
            if families.counts is not None:  # one worker (--workers N keep prometheus_client's)
                self._count = families.counts.add
            if families.shared is not None:
                families.shared.start_keeping()

    def render(self) -> tuple[bytes, str]:
        """(the Prometheus text exposition, its content type)."""
        self.start()
        assert self._families is not None
        return self._families.render(self.gone)

    def _hold(self, pending: list[Any], sample: Any) -> PrometheusFamilies | None:
        """Keep `sample` in `pending` until `start`; the families if `start` finished meanwhile."""
        with self._lock:
            if self._families is None:
                pending.append(sample)
                full = len(pending) >= MAX_PENDING
            else:
                return self._families
        if full:
            self.start()
        return None
