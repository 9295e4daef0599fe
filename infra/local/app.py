"""The local gateway as an RSGI application: granian's HTTP requests -> `Gateway`.

Granian (hyper underneath) owns the HTTP framing: request-line and header limits, the header
read timeout, keep-alive, pipelining, HEAD, `100 Continue` and how many connections a worker
holds (see `infra/local/server.py`). This module only turns a request into a `GatewayRequest`
and the answer back, with the checks that need our knowledge:
- the token and the declared body size are checked before the body is read, so a refused
  request has its body read (and dropped) only when its client sends it anyway, for at most
  DRAIN_S: not one over the limit, nor one that waits for `100 Continue` (hyper sends that only
  when we read it);
- at most `max_in_flight` admitted requests (past the token) are in flight, from their head to
  their answer; one more that would wait (for its body or a thread) is a 503 with Retry-After.
  An idle connection, or a head refused on its token, takes none;
- a chunked body is counted as it arrives and refused once over the limit; a body that does not
  arrive within `body_timeout_s` gets a 408 (one sweeper keeps the deadlines: deadlines.py;
  the reads and drains themselves: request_body.py);
- cheap functions run inline on the event loop (a small model's whole handler takes tens of
  microseconds, less than a hop to a thread); the others, and big bodies, run on a thread
  (which: timing.py), so one slow model does not stall the others and onnxruntime computes on
  one core while the loop parses the next requests on another; those threads take each
  route's calls in turn (fair_pool.py), so a flooded model does not queue the others;
- work a function leaves for after its response (the shadow copy: functions/predict/shadow.py)
  runs here once `protocol.response_bytes` has handed the response to granian, which writes it
  from its own threads at once, without waiting for this coroutine to return (measured with a
  real client: a response followed by 300 ms of work, blocking or holding the GIL, arrived in
  ~1 ms). A job that fails is logged; the response is already on its way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from granian.rsgi import ProtocolClosed, ProtocolError  # type: ignore[attr-defined]

from infra.local.chunked import CUT_MESSAGE, CutBody
from infra.local.connection_limit import MAX_IN_FLIGHT
from infra.local.cors import Cors
from infra.local.fair_pool import FairPool
from infra.local.forwarded import caller_address, forwarded
from infra.local.gateway import Gateway
from infra.local.offloaded_call import OffloadedCall
from infra.local.payload import GatewayRequest, GatewayResponse, error
from infra.local.request_body import DRAIN_S as DRAIN_S  # read from here (tests, the CLI)
from infra.local.request_body import BodyLimits as BodyLimits
from infra.local.request_body import BodyTooLarge, RequestBodies, body_framing, closing
from infra.local.request_ids import REQUEST_ID_HEADER, request_id
from infra.local.timing import (
    INLINE_MAX_BODY,
    INLINE_TIMED_EVERY,
    OVERRUN_S,
    OVERRUN_WALL_S,
    Timing,
)
from infra.local.unreadable_headers import unreadable_routing_key

if TYPE_CHECKING:
    from granian.rsgi import HTTPProtocol, Scope  # type: ignore[attr-defined]

log = logging.getLogger("aiaas.gateway")

RETRY_AFTER_S = 1  # told to a caller refused over --max-in-flight


class GatewayApp(RequestBodies):
    """RSGI callable over one `Gateway` (one per granian worker process)."""

    def __init__(
        self,
        gateway: Gateway,
        limits: BodyLimits,
        warm_up: bool = True,
        trusted_proxies: frozenset[str] = frozenset(),
        max_in_flight: int = MAX_IN_FLIGHT,
        cors_origins: tuple[str, ...] = (),
    ) -> None:
        RequestBodies.__init__(self, limits)  # the body's reads and drains (request_body.py)
        self.gateway = gateway
        # Requests admitted (past `refusal`) and not yet answered, at most `max_in_flight`:
        # counted here, not by granian, whose own limit counts connections, idle ones too.
        self.max_in_flight = max_in_flight
        self._in_flight = 0
        self.trusted_proxies = trusted_proxies  # peers whose X-Forwarded-For names the caller
        self.cors = Cors(cors_origins) if cors_origins else None  # --cors-origins (cors.py)
        self.timing = Timing()
        # As many threads for one route as before the pool was fair, and one more that a route
        # never takes alone: kept for the others (fair_pool.py).
        self.pool = FairPool(max(4, (os.cpu_count() or 1) * 2) + 1, "aiaas-fn")
        self._warm_up = warm_up
        self._warming: threading.Thread | None = None
        self._stopping = threading.Event()
        self._inline_calls = 0
        self._offloaded_calls = 0
        self._cpu_mark = time.thread_time()  # the loop thread's CPU time a few calls ago
        self.on_stopped: Callable[[], None] | None = None  # run last in __rsgi_del__
        self.cut = False  # requests were cut off (`cut_off`): the stop waits for no handler

    # ---- RSGI lifecycle (granian calls these in the worker) ------------------------------

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._cpu_mark = time.thread_time()  # the loop's thread (`_overran`)
        # Cold starts happen off the request path where possible: init every function now, in
        # the background; a request that arrives first simply does that function's init itself.
        if self._warm_up:
            self._warming = threading.Thread(target=self._start, name="aiaas-warm-up", daemon=True)
            self._warming.start()

    def _start(self) -> None:
        self.gateway.warm_up(stop=self._stopping)
        if not self._stopping.is_set():
            self.gateway.metrics.start()  # after the functions: see infra/local/metrics.py

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        # The warm-up stops before its next function and is not waited for: granian calls this
        # on the event loop, so a wait here (up to 30 s for a model still downloading) held a
        # one-worker server's second SIGTERM/SIGINT unread and its stop until the model had
        # loaded. Nothing needs the model: requests in flight were answered before this
        # (one that waits for it keeps the load going, within the grace). The process then
        # ends in os._exit (`end_process`; a worker's multiprocessing likewise), which runs no
        # C++ destructor: the abort seen when it exited with the warm-up inside onnxruntime
        # (exit -6, "terminate called without an active exception") came from interpreter
        # finalization. The download's temp file is left (as by a SIGKILL); the cache never
        # serves one (functions/runtime/cache.py).
        self._stopping.set()
        # granian calls this once every request is answered (or cut off, a 503 each): a thread
        # still busy has no caller left (a call past its Timeout, answered 504) and cannot be
        # stopped. Not waited for: joined here, on the event loop, it held the stop for as long
        # as it ran (the grace's timer is on this loop too); `on_stopped` ends the process.
        self.pool.shutdown(wait=False, cancel_futures=True)
        self._close_bodies()
        if self.on_stopped is not None:
            self.on_stopped()

    def cut_off(self) -> int:
        """Cancel every request still running on this (the running) loop: each answers a 503
        to retry (`__call__`). For a stop past its grace, or a second stop signal. Returns how
        many. Found among the loop's tasks when called, not tracked as they start (~0.4 us a
        request, on every request, for a rare stop)."""
        self.cut = True
        running = [task for task in asyncio.all_tasks() if _serving(task)]
        for task in running:
            task.cancel()
        return len(running)

    # ---- requests -----------------------------------------------------------------------

    async def __call__(self, scope: Scope, protocol: HTTPProtocol) -> None:
        if scope.proto != "http":  # websockets are off in the server; nothing else is routed
            return
        # The event's requestId (so a captured line's and a log line's), sent back with every
        # answer as API Gateway does: a caller can then find its request in a capture export.
        rid = request_id()
        cors = self.cors
        # A browser's preflight carries no token: answered before one is asked for.
        preflight = cors.preflight(scope.method, scope.headers.get) if cors else None
        try:
            response = preflight or await self.answer(scope, protocol, rid)
        except ProtocolClosed:  # the client stopped sending mid-body (it may still read)
            response = closing(error(400, "the request body ended before its declared length"))
        except ProtocolError:  # hyper could not frame the body
            response = closing(error(400, "malformed HTTP request body"))
        except asyncio.CancelledError:  # still running when the shutdown grace ran out
            # Answered, so the request ends here: re-raised, granian would log it as the app's
            # failure with a traceback per request.
            response = closing(error(503, "the server stopped before this request finished; retry"))
        response.headers.append((REQUEST_ID_HEADER, rid))
        if cors is not None and preflight is None:  # every answer, errors too: a page reads them
            cors.add_headers(scope.headers.get("origin"), response.headers)
        if response.route is not None:  # answered here, not by a function: counted and logged
            self.gateway.metrics.refused(response.status, response.route, rid, scope.headers.get)
        protocol.response_bytes(response.status, response.headers, response.body)
        if response.after:
            _run_after(response.after)

    __rsgi__ = __call__

    async def answer(self, scope: Scope, protocol: HTTPProtocol, rid: str = "") -> GatewayResponse:
        headers = scope.headers.items()
        by_name = dict(headers)  # lower-case names (hyper's); a repeated one's last value
        declared, chunked = body_framing(by_name)
        peer = scope.client.rpartition(":")[0].strip("[]") or "127.0.0.1"
        # Through a trusted proxy (--trusted-proxy): its peer, and the X-Forwarded-For it adds.
        proxied = bool(self.trusted_proxies) and peer in self.trusted_proxies and forwarded(headers)
        refused = self.gateway.refusal(headers, declared, proxied)
        refused = refused or unreadable_routing_key(scope.headers, headers)
        if refused is not None:
            return await self._refused(protocol, headers, declared, chunked, refused)
        key = f"{scope.method} {scope.path}"
        # Over the limit, a request that would wait (for its body, or for a thread) is refused;
        # one answered at once on the loop (a cheap route, no body: a health probe) holds no
        # slot for any time, and is answered.
        if self._in_flight >= self.max_in_flight and (declared or chunked or self.timing.slow(key)):
            return await self._refused(protocol, headers, declared, chunked, self._busy())
        self._in_flight += 1
        try:
            try:
                reading = self._body(protocol, declared, chunked)
                body = b"" if reading is None else await reading
            except BodyTooLarge as too_large:  # the rest of a chunked one is drained first
                return await self._too_large(too_large)
            except TimeoutError:
                message = f"request body not received within {self.limits.timeout_s:g} s"
                return closing(error(408, message))
            except CutBody:
                return closing(error(400, CUT_MESSAGE))
            source_ip = caller_address(peer, headers, self.trusted_proxies) if proxied else peer
            folded = None if len(by_name) < len(headers) or "cookie" in by_name else by_name
            # Its fields in order (method, path, query, headers, body, source_ip, request_id,
            # by_name): by keyword, the call took twice as long (~0.5 us).
            request = GatewayRequest(
                scope.method, scope.path, scope.query_string, headers, body, source_ip, rid, folded
            )
            if len(body) > INLINE_MAX_BODY or self.timing.slow(key):
                return await self._offloaded(key, request)
            # Reading the thread's CPU time costs ~2-3 us here (a system call), as much as the
            # rest of the app: an inline route is timed one call in INLINE_TIMED_EVERY. An offloaded
            # one is timed on every call, so a route slow only on its first (cold) call comes
            # back inline soon. Wall time (~0.15 us) is read on every inline call (`_overran`).
            self._inline_calls += 1
            began = time.perf_counter()
            if self._inline_calls % INLINE_TIMED_EVERY:
                response = self.gateway.dispatch(request, defer=True)
            else:
                response = self._timed(key, request, on_loop=True)
            held_s = time.perf_counter() - began
            if held_s > OVERRUN_S:
                self._overran(key, held_s, response.status)
            return response
        finally:
            self._in_flight -= 1

    def _overran(self, key: str, wall_s: float, status: int) -> None:
        """An inline call of `key` held the loop for `wall_s` (over OVERRUN_S): its route goes
        to a thread for a while (timing.py) if the loop's thread spent it working (its CPU time
        since `_cpu_mark`, a few calls ago at most, is OVERRUN_S / 2 or more; a parallel model
        run shares its work with other threads), or whatever it did past OVERRUN_WALL_S. Not
        on wall time alone: a shared host that preempts the process stalls a cheap call as
        long (a 64-float predict: up to 252 ms in 22,000 calls at a load of 10 on 2 cores),
        and a cheap route sent to a thread costs the loop ~40 us more a call."""
        cpu = time.thread_time()
        working = cpu - self._cpu_mark >= OVERRUN_S / 2
        self._cpu_mark = cpu
        if status != 404 and (working or wall_s >= OVERRUN_WALL_S):
            self.timing.overran(key)

    def _busy(self) -> GatewayResponse:
        message = f"the server runs its limit of {self.max_in_flight} requests at once; retry"
        return error(503, message, [("retry-after", str(RETRY_AFTER_S))])

    async def _offloaded(self, key: str, request: GatewayRequest) -> GatewayResponse:
        """The call on a thread, answered with a 504 once over its function's `Timeout` (as
        Lambda ends an invocation there), or the HTTP API's 30 s where that is shorter (as API
        Gateway answers then): a model that runs for minutes held its caller, and a client
        that gave up, for as long. Its onnxruntime run is stopped at the same limit
        (`AIAAS_MAX_RUN_SECONDS` here: functions.py); other work on the thread runs on, its
        answer dropped (a call still queued never starts), one of the threads a route may hold
        (fair_pool.py) until it ends."""
        self._offloaded_calls += 1
        if not self._offloaded_calls % INLINE_TIMED_EVERY:  # kept recent while no call runs inline
            self._cpu_mark = time.thread_time()
        found = self.gateway.route(request.method, request.path)
        timeout_s = found[0].function.api_timeout_s if found is not None else None
        # The threads are shared out by function: every path and version of a model is one.
        group = found[0].function.spec.logical_id if found is not None else key
        call = OffloadedCall()
        try:
            async with asyncio.timeout(timeout_s):
                future = self.pool.submit(key, self._on_thread, key, request, call, group=group)
                return await asyncio.wrap_future(future)
        except TimeoutError:
            call.abandon(self.gateway.metrics.abandoned)
            route = f"{found[0].method} {found[0].template}" if found is not None else key
            ids = {"request_id": request.request_id}
            log.error("%s did not answer within its %g s timeout", route, timeout_s, extra=ids)
            return error(504, found[0].function.late() if found else "no answer in time", [], route)

    def _on_thread(self, key: str, request: GatewayRequest, call: OffloadedCall) -> GatewayResponse:
        with call.running(self.gateway.metrics.abandoned):
            return self._timed(key, request)

    def _timed(self, key: str, request: GatewayRequest, on_loop: bool = False) -> GatewayResponse:
        # CPU time of this thread, not wall time: waiting for the GIL while offloaded must not
        # make a cheap function look expensive and keep it off the fast inline path.
        start = time.thread_time()
        if on_loop:
            self._cpu_mark = start
        response = self.gateway.dispatch(request, defer=True)
        seconds = time.thread_time() - start
        timing = self.timing
        timing.record(key, seconds, response.model_seconds, response.status)
        # Asked once a path, whatever the answer (a 503 while its version fails to load: the
        # probe asks the module each call, and a module not loaded says to go off the loop).
        if key not in timing.probes and response.status != 404:
            timing.probes[key] = self.gateway.varies_probe(request.method, request.path)
        return response


def _serving(task: asyncio.Task[object]) -> bool:
    """Whether `task` is inside `GatewayApp.__call__`: its coroutines awaiting each other are
    walked down (the server's wrappers await the app's call)."""
    coro: object = task.get_coro()
    while coro is not None:
        if getattr(coro, "cr_code", None) is GatewayApp.__call__.__code__:
            return True
        coro = getattr(coro, "cr_await", None)
    return False


def _run_after(jobs: list[Callable[[], None]]) -> None:
    """The work left for after a response that granian has already been handed."""
    for job in jobs:
        try:
            job()
        except Exception:
            log.exception("work after a response failed")
