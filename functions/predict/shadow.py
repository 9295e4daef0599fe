"""Shadow traffic, the caller's side: a sampled copy of the requests an alias answers leaves
the caller's process as one line (functions/predict/shadow_copy.py), and is replayed to the
alias's shadow version elsewhere (functions/shadow/), where the two answers are compared.

Both data-plane forms are shadowed: simple JSON (`/models/{name}/predict`) and the Open
Inference Protocol (`/v2/models/{name}/infer`, JSON and binary tensors). Without a shadow the
caller's path pays one attribute check; with one, a random draw and, for a sampled request,
the line (a few microseconds: docs/rollout.md) and its hand-off, which never waits.

When that work runs is the host's to say (`Later`): `aiaas serve` passes a `later` that holds
the copy until granian has been handed the response (infra/local/app.py), so the caller's
answer never waits for it; Lambda has no "after" (API Gateway gets the answer when the handler
returns), so there the copy is made before the handler returns. Either way one function builds
and sends it (`ShadowTap._copy`), with references only held in between (the request body, the
response body or outputs, the ids: nothing is copied), and a copy that fails is a drop, counted
and logged, never an error for the caller:
- in Lambda (`LogSink`), the line goes to stdout like the EMF: CloudWatch Logs delivers it to
  the ShadowFunction through a subscription filter. No API call, nothing left in the container;
- elsewhere (`aiaas serve`, benches: functions/shadow/channel.py), to a replay process of the
  function instance's own, at the lowest CPU priority, over a socket that drops when full.
A copy over MAX_COPY_BYTES (a CloudWatch Logs event's limit), or one the replay process cannot
take now, is dropped and counted (`aiaas_shadow_dropped_total`).
"""

from __future__ import annotations

import logging
import random
import sys
import threading
from collections.abc import Callable, Mapping
from functools import partial
from types import ModuleType
from typing import TYPE_CHECKING, Protocol, TextIO

import numpy as np

from functions.predict.telemetry import RequestMetrics, ShadowLabels
from functions.runtime.dataplane.model import ModelPlane
from functions.runtime.model import LoadedModel

if TYPE_CHECKING:
    from functions.shadow.channel import ReplayChannel

SINKS = ("log", "process")
log = logging.getLogger("aiaas.shadow")

Job = Callable[[], None]
Later = Callable[[Job], None]  # runs a job after the response is handed over (the host's)


class CopySink(Protocol):
    """Where copies leave the caller's process."""

    def send(self, labels: ShadowLabels, line: bytes) -> bool:
        """Hand the copy over without waiting; False when it was not taken (a drop)."""

    def drain(self, timeout: float) -> bool:
        """Wait until the copies handed over are replayed (tests, benches)."""

    def close(self) -> None:
        """No more copies: what replays them ends once it has replayed those handed over,
        waiting for nothing (`aiaas serve` retiring the function)."""


class LogSink:
    """Copies as stdout lines (Lambda: to the ShadowFunction by a log subscription filter)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out  # None: sys.stdout at the time of writing

    def send(self, labels: ShadowLabels, line: bytes) -> bool:
        out = self._out or sys.stdout
        out.write(line.decode())
        out.flush()
        return True

    def drain(self, timeout: float) -> bool:
        return True  # replayed by another function, later

    def close(self) -> None:
        return None  # nothing of its own runs


def sink_from_env(env: Mapping[str, str], metrics: RequestMetrics) -> CopySink:
    """`AIAAS_SHADOW_SINK` (log|process); unset: log inside Lambda, a process elsewhere."""
    kind = env.get("AIAAS_SHADOW_SINK") or ("log" if env.get("AWS_LAMBDA_RUNTIME_API") else "")
    if kind == "log":
        return LogSink()
    return ProcessSink(env, metrics)


class ProcessSink:
    """Copies to the local replay process (functions/shadow/channel.py), its channel opened on
    the first copy: a function whose alias never names a shadow does not import it (sockets,
    subprocess: ~4 ms of a cold start)."""

    def __init__(self, env: Mapping[str, str], metrics: RequestMetrics) -> None:
        self._env = dict(env)  # as it is now: `aiaas serve` patches the environment for init only
        self._metrics = metrics
        self._opening = threading.Lock()
        self.channel: ReplayChannel | None = None

    def send(self, labels: ShadowLabels, line: bytes) -> bool:
        return (self.channel or self._open()).send(labels, line)

    def drain(self, timeout: float) -> bool:
        return self.channel is None or self.channel.drain(timeout)

    def close(self) -> None:
        with self._opening:
            channel = self.channel
        if channel is not None:
            channel.close()

    def _open(self) -> ReplayChannel:
        with self._opening:
            if self.channel is None:
                from functions.shadow.channel import ReplayChannel

                metrics = self._metrics
                self.channel = ReplayChannel(
                    self._env, metrics.shadow_observed, metrics.shadow_dropped
                )
            return self.channel


class ShadowTap:
    """Samples the requests answered for the served alias's shadow and hands copies to `sink`."""

    def __init__(
        self,
        plane: ModelPlane,
        metrics: RequestMetrics,
        sink: CopySink,
        *,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.plane = plane
        self.metrics = metrics
        self.sink = sink
        self._draw = draw
        self._copies: ModuleType | None = None

    @property
    def copies(self) -> ModuleType:
        """shadow_copy.py, imported by the first copy: an alias without a shadow never needs
        it, so a cold start does not import it; kept here, where a copy reads it in ~50 ns (an
        import statement of it takes ~700 ns a copy)."""
        if self._copies is None:
            from functions.predict import shadow_copy

            self._copies = shadow_copy
        return self._copies

    def offer(
        self, answered: LoadedModel, request_id: str, body: bytes, answer: str, later: Later | None
    ) -> None:
        """After `answered` gave the caller `answer` (the response body) to `body`; the copy is
        made now, or by `later` once the response is handed over."""
        if self.plane.served.shadow is not None:
            labels = self._sampled(answered)
            if labels is not None:
                build = partial(self.copies.predict_line, labels, request_id, body, answer)
                self._hand_off(labels, build, later)

    def offer_infer(
        self,
        answered: LoadedModel,
        request_id: str,
        body: bytes,
        header: str | None,
        outputs: dict[str, np.ndarray],
        later: Later | None,
    ) -> None:
        """After `answered` gave `outputs` to an OIP infer `body` (binary when `header`)."""
        if self.plane.served.shadow is not None:
            labels = self._sampled(answered)
            if labels is not None:
                build = partial(self.copies.infer_line, labels, request_id, body, header, outputs)
                self._hand_off(labels, build, later)

    def drain(self, timeout: float) -> bool:
        return self.sink.drain(timeout)

    def _sampled(self, answered: LoadedModel) -> ShadowLabels | None:
        shadow = self.plane.served.shadow
        if shadow is None:
            return None
        theirs, sample = shadow
        manifest = answered.manifest
        if theirs.version == manifest.version:  # a request pinned to the shadow version
            return None
        if sample < 1.0 and self._draw() >= sample:
            return None
        return manifest.name, manifest.version, theirs.version

    def _hand_off(
        self, labels: ShadowLabels, build: Callable[[], bytes], later: Later | None
    ) -> None:
        if later is None:
            self._copy(labels, build)
        else:
            later(partial(self._copy, labels, build))

    def _copy(self, labels: ShadowLabels, build: Callable[[], bytes]) -> None:
        """Build the line and hand it to the sink: the one path, now or after the response."""
        try:
            line = build()
            if len(line) <= self.copies.MAX_COPY_BYTES and self.sink.send(labels, line):
                return
        except Exception:  # a copy never fails the caller: it is a drop, counted
            log.exception("shadow copy of %s/%s -> %s failed", *labels)
        self.metrics.shadow_dropped(labels)
