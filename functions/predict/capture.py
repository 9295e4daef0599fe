"""Data capture on the predict routes: a sampled share of the answered requests, with their
answers, as JSON lines in the store (functions/runtime/capture/; off by default).

One line per captured request (the format `aiaas compare` and `aiaas capture export` read):

    {"time": "2026-11-30T12:00:00.123Z", "request_id": "...", "model": "churn", "version": "3",
     "route": "predict" | "infer", "request": <body, denied fields removed>,
     "response": <body, a denied key it echoes from the request (OIP `id`) removed>}

Captured: 200 answers of `POST .../predict` and of `POST .../infer` in JSON. An OIP request or
answer in binary tensors is not: its line would have to decode every tensor into JSON numbers
on the caller's path (more than the inference costs for a large input), and callers choosing
binary do so for size; such requests are counted as skipped (`CaptureTap.skipped`).

Counted as metrics too (`report`: the function's RequestMetrics.capture, so EMF in Lambda and
`/metrics` under `aiaas serve`): lines written, dropped (buffer full, write failed), skipped.

Cost: with capture off, one clock read and a compare per request (the setting is re-read in the
background every alias TTL). A captured line costs its serialisation (the answer is embedded as
the bytes already sent unless the deny-list names a key it echoes; the request too when no
field is denied) plus, about once a second,
one object written at the end of a request (functions/runtime/capture/buffer.py).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from functions.predict.http import HttpRequest
from functions.runtime.capture.buffer import SKIPPED_BINARY, CaptureBuffer, CountReport
from functions.runtime.capture.setting import OFF, CaptureSetting, read_setting
from functions.runtime.errors import AiaasError
from functions.runtime.model import LoadedModel
from functions.runtime.said_once import SaidOnce
from functions.runtime.served import ServedModel

if TYPE_CHECKING:
    from functions.runtime.capture.redact import Redactor

log = logging.getLogger("aiaas.capture")

# The top-level keys of an OIP answer copied from its request (functions/runtime/codecs/oip.py
# `encode_response`): a deny-list naming one removes it from the captured answer too.
ECHOED = frozenset({"id"})
ECHOED_NONE: frozenset[str] = frozenset()

# A request answered while the setting is read again, kept until that read makes its line:
# (time stamp, route, model, request, JSON answer).
Answered = tuple[str, str, LoadedModel, HttpRequest, str]


class CaptureTap:
    """Samples the answered requests of the served model into a `CaptureBuffer`."""

    def __init__(
        self,
        served: ServedModel,
        buffer: CaptureBuffer | None = None,
        *,
        report: CountReport | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        draw: Callable[[], float] = random.random,
        wait_s: float | None = None,
        timer: bool = False,
    ) -> None:
        self.served = served
        self.buffer = buffer or CaptureBuffer(
            served.pool.registry.store, clock=clock, wall=wall, wait_s=wait_s, timer=timer
        )
        if report is not None:  # the buffer reports its lines written and dropped there too
            self.buffer.report = report
        self.setting: CaptureSetting = OFF
        self.skipped = 0  # sampled requests whose bodies are binary (not captured)
        self._sample = 0.0  # self.setting.sample, read per request without an attribute chain
        self._clock, self._wall, self._draw = clock, wall, draw
        self._next_check = 0.0  # the first request reads the setting (unless `refresh` did)
        self._reading = threading.Lock()
        # Requests answered while the setting was being read again: their lines are made by
        # the setting read (`_settle`), so none is captured under a setting since turned off
        # or with a field since denied, and added in the order they were answered (the first
        # one's line came after the others' on a slow store: S3's export was out of time order
        # once a TTL).
        self._held: list[tuple[tuple[str, str, str], Answered]] = []
        self._held_bytes = 0
        self._held_lock = threading.Lock()
        self._rereading = False
        self._formatted = (-1, "")  # the second `_stamp` last formatted, and its text
        self._redactors: dict[tuple[str, frozenset[str]], Redactor] = {}
        self._failures = SaidOnce(log)  # a store down for long: one line, not one a TTL

    # ---- the setting: read at init, then in the background every alias TTL -----------------

    def refresh(self) -> None:
        """Read the model's setting now (container init; the background refresh)."""
        self._next_check = self._clock() + self.served.ttl
        try:
            setting = read_setting(self.served.pool.registry.store, self.served.name)
        except AiaasError as exc:  # keep the setting known: a store hiccup changes nothing
            self._failures.failed(f"capture setting of {self.served.name} not read: {exc.message}")
            return
        self._failures.worked(f"capture setting of {self.served.name} read again")
        if setting != self.setting:
            log.info("capture of %s: %s", self.served.name, setting.describe())
            self.setting, self._sample = setting, setting.sample
            self._redactors.clear()
            if not setting.on:
                self.buffer.flush()

    def expire(self) -> None:
        """Read the setting again on the next request (after a SnapStart restore)."""
        self._next_check = 0.0

    def _refresh_later(self) -> bool:
        """Read the setting again on a thread; whether this call started that read."""
        if not self._reading.acquire(blocking=False):
            return False
        self._next_check = self._clock() + self.served.ttl
        with self._held_lock:
            self._rereading = True
        threading.Thread(target=self._refresh_and_release, daemon=True).start()
        return True

    def _refresh_and_release(self) -> None:
        try:
            self.refresh()
        finally:
            with self._held_lock:  # requests answered meanwhile wait, and add theirs after
                for group, answered in self._held:
                    self._settle(group, answered)
                self._held, self._held_bytes, self._rereading = [], 0, False
            self._reading.release()

    def _settle(self, group: tuple[str, str, str], answered: Answered) -> None:
        """A request answered while the setting was read again: its line is made under the
        setting read, or none when that read turned capture off. A request answered past the
        TTL was captured under the old setting, so `aiaas capture --off` still captured the
        next request of each worker, however much later it came; and a line made under the old
        deny-list was dropped when the list changed, counted nowhere: each worker lost the
        request that found the setting stale (`capture_lines_total` one short of the requests
        sampled, a worker)."""
        if self.setting.on:
            self.buffer.add(group, self._line(*answered))

    # ---- per request ---------------------------------------------------------------------

    def offer(
        self, route: str, model: LoadedModel, request: HttpRequest, answer: str | None
    ) -> None:
        """After `model` answered `request` with the JSON `answer` (None: binary): maybe
        capture both."""
        rereading = self._clock() >= self._next_check and self._refresh_later()
        sample = self._sample
        if sample == 0.0:
            return
        if sample < 1.0 and self._draw() >= sample:
            self.buffer.tick()
            return
        manifest = model.manifest
        if answer is None or request.header("inference-header-content-length") is not None:
            self.skipped += 1
            self.buffer.report(SKIPPED_BINARY, manifest.name, manifest.version, 1)
            self.buffer.tick()
            return
        stamp = self._stamp()
        group = (manifest.name, manifest.version, stamp[:10])
        if rereading or self._rereading:  # the setting is being read: the read decides
            answered: Answered = (stamp, route, model, request, answer)
            size = len(request.body) + len(answer)  # about the line's size
            with self._held_lock:
                if self._rereading and self._held_bytes + size <= self.buffer.max_bytes:
                    self._held.append((group, answered))
                    self._held_bytes += size
                    return
            if rereading:
                self._settle(group, answered)
                return
        self.buffer.add(group, self._line(stamp, route, model, request, answer))

    def _stamp(self) -> str:
        """Now as ISO-8601 UTC to the millisecond; the seconds formatted once a second
        (datetime's isoformat costs ~2 us a line, this ~0.3 us). Both kept as one tuple: requests
        on `aiaas serve`'s threads read it while another replaces it (two attributes let one
        read the new second with the old text: a line a second early, or dated "")."""
        now = self._wall()
        second = int(now)
        formatted, prefix = self._formatted
        if second != formatted:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._formatted = (second, prefix)
        return f"{prefix}.{int((now - second) * 1000):03d}Z"

    def _line(
        self, stamp: str, route: str, model: LoadedModel, request: HttpRequest, answer: str
    ) -> bytes:
        manifest = model.manifest
        deny = self.setting.deny
        doc = {
            "time": stamp,
            "request_id": request.request_id or uuid.uuid4().hex,
            "model": manifest.name,
            "version": manifest.version,
            "route": route,
            "request": self._request(model, request.body, deny),
            "response": orjson.Fragment(answer) if not deny else _response(route, answer, deny),
        }
        return orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)

    def _request(self, model: LoadedModel, body: bytes, deny: frozenset[str]) -> object:
        if not deny and b"\n" not in body and b"\r" not in body:
            return orjson.Fragment(body)  # valid JSON (it was just answered), kept as sent
        # Keyed by the deny-list too: a setting changing meanwhile never reuses the old list.
        key = (model.manifest.version, deny)
        redact = self._redactors.get(key)
        if redact is None:
            # Only a deny-list (or a multi-line body) redacts: not imported at a cold start.
            from functions.runtime.capture.redact import Redactor

            redact = self._redactors[key] = Redactor(deny, model.manifest)
        return redact(orjson.loads(body))

    def flush(self) -> None:
        """Write every held line now (`aiaas serve` stopping)."""
        self.buffer.flush()


def _response(route: str, answer: str, deny: frozenset[str]) -> object:
    """The answer as captured: an OIP answer without the denied keys it echoes from the request
    (its `id`, where callers put a customer id or an email): removed from `request` only, the
    denied value reached the store in `response`. Parsed only when one of those is denied."""
    echoed = ECHOED & deny if route == "infer" else ECHOED_NONE
    if not echoed:
        return orjson.Fragment(answer)
    doc = orjson.loads(answer)
    return {k: v for k, v in doc.items() if k not in echoed} if isinstance(doc, dict) else doc
