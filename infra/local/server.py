"""HTTP/1.1 transport of the local gateway: asyncio + httptools (uvicorn's parser), keep-alive.

Fast functions run inline on the event loop: for a small model the whole handler takes tens of
microseconds, less than a hop to a thread pool. A function whose recent calls average over
`OFFLOAD_AFTER_S` of CPU, or over `OFFLOAD_MODEL_S` in its model (onnxruntime, which releases
the GIL), runs in a thread pool instead: one slow model does not stall the others, and a model
such as the demo's transformer (~0.19 ms a row) computes on one core while the event loop
parses the next requests on another. `workers > 1` pre-forks processes sharing the listening
socket, as Lambda would run several containers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

import httptools

from infra.local.gateway import Gateway, GatewayRequest, GatewayResponse, error

log = logging.getLogger("aiaas.gateway")

OFFLOAD_AFTER_S = 0.002
OFFLOAD_MODEL_S = (
    0.0001  # the demo's MLP and CNN spend ~0.01 ms in onnxruntime, its transformer ~0.19
)
MAX_HEADERS = 100
MAX_HEADER_BYTES = 64 * 1024
_REASONS = {s.value: s.phrase for s in HTTPStatus}


def encode_response(response: GatewayResponse, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}"]
    lines += [f"{name}: {value}" for name, value in response.headers if name != "content-length"]
    lines.append(f"content-length: {len(response.body)}")
    if not keep_alive:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


class _Timing:
    """Per-path moving average of handler time, to decide inline vs thread pool.

    A path's first call goes to the pool: it may be a cold start (a model load, a FastAPI
    import) that must not stall the event loop.
    """

    MAX_PATHS = 10_000  # unknown paths (scans, typos) must not grow this without bound

    def __init__(self) -> None:
        self.average: dict[str, float] = {}
        self.model: dict[str, float] = {}  # the function's own average time in its model

    def slow(self, key: str) -> bool:
        return (
            self.average.get(key, 1.0) > OFFLOAD_AFTER_S
            or self.model.get(key, 0.0) > OFFLOAD_MODEL_S
        )

    def record(self, key: str, seconds: float, model_seconds: float = 0.0) -> None:
        if len(self.average) >= self.MAX_PATHS and key not in self.average:
            self.average.clear()
            self.model.clear()
        self.average[key] = 0.9 * self.average.get(key, seconds) + 0.1 * seconds
        self.model[key] = model_seconds


class GatewayProtocol(asyncio.Protocol):
    """One connection: parse requests, answer them in order."""

    def __init__(self, gateway: Gateway, pool: ThreadPoolExecutor, timing: _Timing) -> None:
        self.gateway, self.pool, self.timing = gateway, pool, timing
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        # Set while an offloaded request runs: pipelined requests parsed meanwhile wait here,
        # since HTTP/1.1 answers in the order requests arrived.
        self._waiting: list[tuple[GatewayRequest | GatewayResponse, bool]] | None = None
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.header_bytes = 0
        self.body: list[bytes] = []
        self.body_size = 0
        self.too_large = False

    # ---- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else "127.0.0.1"

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            self._fail(400, f"malformed HTTP request: {exc}")

    def _fail(self, status: int, message: str) -> None:
        if self.transport and not self.transport.is_closing():
            self.transport.write(encode_response(error(status, message), keep_alive=False))
            self.transport.close()

    # ---- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        self._reset()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value)
        if len(self.headers) >= MAX_HEADERS or self.header_bytes > MAX_HEADER_BYTES:
            raise httptools.HttpParserError("too many or too large headers")
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        # curl asks before sending a body over 1 MB and waits a second for the go-ahead.
        if self.transport and any(
            name.lower() == "expect" and value.lower() == "100-continue"
            for name, value in self.headers
        ):
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > self.gateway.max_body:
            self.too_large = True  # keep reading, stop storing
        else:
            self.body.append(body)

    def on_message_complete(self) -> None:
        keep_alive = self.parser.should_keep_alive()
        item: GatewayRequest | GatewayResponse
        if self.too_large:
            item = error(413, f"request body is over the {self.gateway.max_body} byte limit")
            keep_alive = False
        else:
            url = httptools.parse_url(self.url)
            item = GatewayRequest(
                method=self.parser.get_method().decode("ascii"),
                path=url.path.decode("utf-8", "replace"),
                query=(url.query or b"").decode("utf-8", "replace"),
                headers=self.headers,
                body=b"".join(self.body),
                source_ip=self.peer,
            )
        if self._waiting is not None:
            self._waiting.append((item, keep_alive))
            return
        self._answer(item, keep_alive)

    def _answer(self, item: GatewayRequest | GatewayResponse, keep_alive: bool) -> None:
        if isinstance(item, GatewayResponse):
            self._write(item, keep_alive)
            return
        key = f"{item.method} {item.path}"
        if not self.timing.slow(key):
            self._write(self._timed(key, item), keep_alive)
            return
        assert self.transport is not None
        self.transport.pause_reading()  # no new data until this one is answered
        self._waiting = []
        future = asyncio.get_running_loop().run_in_executor(self.pool, self._timed, key, item)
        future.add_done_callback(lambda f: self._after_offload(f, keep_alive))

    def _after_offload(self, future: asyncio.Future[GatewayResponse], keep_alive: bool) -> None:
        self._write(future.result(), keep_alive)
        waiting, self._waiting = self._waiting or [], None
        for index, (item, keep) in enumerate(waiting):
            self._answer(item, keep)
            if self._waiting is not None:  # offloaded again: the rest queue behind it
                self._waiting.extend(waiting[index + 1 :])
                return
        if self.transport and not self.transport.is_closing():
            self.transport.resume_reading()

    def _timed(self, key: str, request: GatewayRequest) -> GatewayResponse:
        # CPU time of this thread, not wall time: waiting for the GIL while offloaded must not
        # make a cheap function look expensive and keep it off the fast inline path.
        start = time.thread_time()
        response = self.gateway.handle(request)
        self.timing.record(key, time.thread_time() - start, response.model_seconds)
        return response

    def _write(self, response: GatewayResponse, keep_alive: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(encode_response(response, keep_alive))
        if not keep_alive:
            self.transport.close()


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    except ImportError:  # pragma: no cover - uvloop is optional
        return asyncio.new_event_loop()


def _finish(stop: asyncio.Future[None]) -> None:
    if not stop.done():
        stop.set_result(None)


def serve_socket(
    sock: socket.socket,
    make_gateway: Callable[[], Gateway],
    ready: Callable[[], None] | None = None,
) -> None:
    """Run one worker on an already bound socket until SIGINT/SIGTERM."""
    gateway = make_gateway()
    loop = _event_loop()
    asyncio.set_event_loop(loop)
    pool = ThreadPoolExecutor(
        max_workers=max(4, (os.cpu_count() or 1) * 2), thread_name_prefix="aiaas-fn"
    )
    timing = _Timing()
    server = loop.run_until_complete(
        loop.create_server(lambda: GatewayProtocol(gateway, pool, timing), sock=sock, backlog=1024)
    )
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _finish, stop)
    # Cold starts happen off the request path where possible: init every function now, in the
    # background; a request that arrives first simply does that function's init itself.
    threading.Thread(target=gateway.warm_up, name="aiaas-warm-up", daemon=True).start()
    if ready:
        ready()
    try:
        loop.run_until_complete(stop)
    finally:
        server.close()
        loop.run_until_complete(server.wait_closed())
        pool.shutdown(wait=False, cancel_futures=True)
        loop.close()


def serve(
    host: str,
    port: int,
    make_gateway: Callable[[], Gateway],
    workers: int = 1,
    ready: Callable[[], None] | None = None,
) -> None:
    """Serve on host:port with `workers` processes (each its own function instances)."""
    sock = bind(host, port)
    if workers <= 1:
        serve_socket(sock, make_gateway, ready)
        return
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # child: its own models, loaded after the fork
            try:
                serve_socket(sock, make_gateway)
            finally:
                os._exit(0)
        children.append(pid)
    if ready:
        ready()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        os.waitpid(child, 0)
