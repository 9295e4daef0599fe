"""Shadow traffic: a sampled copy of the requests an alias answers, replayed to its shadow
version after the caller's answer is computed, and the two answers compared as metrics.

Both data-plane forms are shadowed: simple JSON (`/models/{name}/predict`) and the Open
Inference Protocol (`/v2/models/{name}/infer`, JSON and binary tensors). The caller's path pays
for a random draw and a non-blocking put of references (the body and the answer it got, or the
decoded infer request and its outputs; no copy) onto a bounded queue, only when the alias has a
shadow; without one, a single attribute check (and, on every request, two stores of the
`busy` flag). One worker thread replays the copies, at the lowest CPU priority (nice 19), and
only while no caller's request is in flight: callers come first, for the CPU and for the GIL.
When it falls behind, the queue fills and further copies are dropped and counted
(`aiaas_shadow_dropped_total`), never waited for. So the share replayed is what the idle time
allows: most of it at a production rate with CPU headroom, almost none under callers that
never pause (`python -m bench.shadow_latency` measures both; docs/rollout.md has figures).

Where it runs (the same code in both, one choice):
- `aiaas serve` runs the handler in a long-lived process: the worker runs in the gaps between
  requests.
- Lambda freezes the container once the handler returns, and the worker waits while the next
  invocation runs: it gets only the moments between an answer and the freeze, so few copies
  are replayed there (the rest wait in the queue, at most QUEUE_SIZE, or are dropped). Issue
  #17 asks for the copy to leave the caller's container in Lambda (an asynchronous invoke or
  a queue); not built yet. An asynchronous self-invoke (InvokeType=Event) needs an API call
  per copy (~10-30 ms, on this same thread), `lambda:InvokeFunction` on itself, a second
  event shape and twice the invocations billed; a queue (SQS) adds the same call plus a
  consumer. A shadow is a sample for comparison: losing some is fine, slowing callers is not.
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from functions.predict.telemetry import RequestMetrics, ShadowLabels, logger
from functions.runtime.codecs import simple
from functions.runtime.codecs.oip import InferRequest
from functions.runtime.dataplane.compare import compare
from functions.runtime.dataplane.model import ModelPlane
from functions.runtime.errors import AiaasError
from functions.runtime.model import LoadedModel

QUEUE_SIZE = 64  # copies waiting at most; past this they are dropped and counted
# While a caller's request is in flight the worker sleeps, first this long, doubling up to the
# most: each wake takes the GIL from a caller once, so they must be rare when callers are busy.
YIELD_S = 0.001
YIELD_MAX_S = 0.02


@dataclass(frozen=True)
class InferCopy:
    """An OIP infer request (JSON or binary), as the caller's version decoded it, and the
    outputs that version answered: the shadow runs the same decoded tensors, so a binary body
    is not parsed twice, and both answers are compared in the simple form (labels included)."""

    request: InferRequest
    served_by: LoadedModel
    outputs: dict[str, np.ndarray]


# A simple JSON predict body and the answer the caller got; or an infer copy (answer unused).
_Copy = tuple[ShadowLabels, LoadedModel, bytes | InferCopy, dict[str, Any]]
_NO_ANSWER: dict[str, Any] = {}


def _lowest_priority() -> None:
    """Lower the calling thread's CPU priority to the least (Linux: nice applies per thread).

    Measured: at nice 0 the woken worker preempts the caller's thread on its core (1.3
    involuntary switches per caller request at sample 1, 0.01 without a shadow) and the caller's
    CPU time per request grows by half; at 19 the kernel runs callers first."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # not Linux, or not allowed: the worker still runs
        logger.warning("the shadow worker runs at its default CPU priority")


class ShadowRunner:
    """Replays sampled requests to the served alias's shadow version on one worker thread."""

    def __init__(
        self,
        plane: ModelPlane,
        metrics: RequestMetrics,
        *,
        capacity: int = QUEUE_SIZE,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.plane = plane
        self.metrics = metrics
        self._draw = draw
        self._queue: queue.Queue[_Copy] = queue.Queue(capacity)
        self._capacity = capacity
        self._worker: threading.Thread | None = None
        self._starting = threading.Lock()
        # True while a caller's request is in flight: the service sets it around each request
        # (two attribute stores, ~40 ns). Shared by concurrent requests, so approximate: one
        # ending clears it while another runs; the worker then runs a step it could have
        # delayed, as before this existed. Never wrong for long: the next request sets it.
        self.busy = False

    def offer(self, answered: LoadedModel, body: bytes, answer: dict[str, Any]) -> None:
        """After `answered` gave the caller `answer` to `body`: maybe queue a copy for the shadow."""
        if self.plane.served.shadow is not None:
            self._offer(answered, body, answer)

    def offer_infer(
        self, answered: LoadedModel, request: InferRequest, outputs: dict[str, np.ndarray]
    ) -> None:
        """After `answered` gave `outputs` to an OIP infer `request`: maybe queue a copy."""
        if self.plane.served.shadow is not None:
            self._offer(answered, InferCopy(request, answered, outputs), _NO_ANSWER)

    def _offer(
        self, answered: LoadedModel, body: bytes | InferCopy, answer: dict[str, Any]
    ) -> None:
        shadow = self.plane.served.shadow
        if shadow is None:
            return
        model, sample = shadow
        if model is answered:  # a request pinned to the shadow version: nothing to compare
            return
        if sample < 1.0 and self._draw() >= sample:
            return
        manifest = answered.manifest
        labels = (manifest.name, manifest.version, model.manifest.version)
        if len(self._queue.queue) >= self._capacity:  # full: no lock taken, no Full raised
            self.metrics.shadow_dropped(labels)  # (~1 us less for a caller whose copy drops)
            return
        try:
            self._queue.put_nowait((labels, model, body, answer))
        except queue.Full:  # filled by a concurrent caller since
            self.metrics.shadow_dropped(labels)
            return
        if self._worker is None:
            self._start()

    def drain(self, timeout: float) -> bool:
        """Wait until every queued copy is replayed (tests, benches); False if `timeout` ran out."""
        deadline = time.monotonic() + timeout
        done = self._queue.all_tasks_done
        with done:
            while self._queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0 or not done.wait(left):
                    return not self._queue.unfinished_tasks
        return True

    def _start(self) -> None:
        with self._starting:
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="aiaas-shadow", daemon=True)
                self._worker.start()

    def _run(self) -> None:
        _lowest_priority()
        while True:
            copy = self._queue.get()
            try:
                self._yield()
                self._replay(*copy)
            except Exception:  # the worker must outlive any copy
                logger.exception("shadow replay failed")
            finally:
                self._queue.task_done()

    def _yield(self) -> None:
        """Wait until no caller's request is in flight, then hand the GIL to any caller that
        wants it now (a request arriving on a socket) before going on.

        The worker holds the GIL in steps of tens of microseconds (parse, validate, compare);
        a caller that wants it meanwhile waits for the step to end, so steps start only while
        callers are idle. Callers that never pause (back to back) leave the shadow no time:
        its queue fills and copies are dropped and counted, by design."""
        pause = YIELD_S
        while self.busy:
            time.sleep(pause)
            pause = min(2 * pause, YIELD_MAX_S)
        time.sleep(0)

    def _replay(
        self,
        labels: ShadowLabels,
        model: LoadedModel,
        body: bytes | InferCopy,
        answer: dict[str, Any],
    ) -> None:
        start = time.perf_counter()
        try:
            theirs = self._answer(model, body)
            seconds = time.perf_counter() - start
            self._yield()  # a caller waiting for the GIL gets it now, not after 5 ms
            if isinstance(body, InferCopy):  # both in the simple form: labels compared too
                answer = simple.encode(body.served_by.manifest, body.outputs)
            comparison = compare(answer, theirs)
        except Exception as exc:  # a shadow that fails is what this is here to find
            seconds = time.perf_counter() - start
            reason = exc.message if isinstance(exc, AiaasError) else repr(exc)
            logger.warning("shadow %s of %s:%s failed: %s", labels[2], *labels[:2], reason)
            self.metrics.shadow(labels, seconds, None)
            return
        self.metrics.shadow(labels, seconds, comparison)

    def _answer(self, model: LoadedModel, body: bytes | InferCopy) -> dict[str, Any]:
        """The shadow's answer in the simple JSON form, as the caller's is compared."""
        if isinstance(body, InferCopy):
            return simple.encode(model.manifest, self.plane.run_decoded(model, body.request))
        return self.plane.predict(model, body, 1)
