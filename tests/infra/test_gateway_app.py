"""The gateway's RSGI app in process, against a fake granian scope and protocol.

Framing (heads, keep-alive, pipelining, HEAD) is granian's and is tested over real sockets in
test_serve_hostile.py; here: what the app decides before and while it reads a body, and what it
hands the gateway.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace

import orjson
from granian.rsgi import ProtocolClosed  # type: ignore[attr-defined]

from infra.local.app import BodyLimits, GatewayApp
from infra.local.gateway import Gateway, GatewayRequest, GatewayResponse, build_event
from infra.local.request_body import DRAIN_MAX_BYTES
from infra.local.unreadable_headers import UNREADABLE_KEY

TOKEN = "t0ken"


class RecordingGateway(Gateway):
    """A gateway with no functions that answers 200 with what it was handed."""

    def __init__(self, token: str | None = TOKEN, max_body: int = 100) -> None:
        super().__init__({}, token=token, max_body=max_body)
        self.seen: list[GatewayRequest] = []

    def dispatch(self, request: GatewayRequest, defer: bool = False) -> GatewayResponse:
        self.seen.append(request)
        return GatewayResponse(200, [("content-type", "application/json")], b"{}")


class Headers:
    """Granian's RSGI headers: `items()` leaves out the values it cannot decode (`dropped`: any
    byte other than visible ASCII), whose names `in` still finds."""

    def __init__(self, items: list[tuple[str, str]], dropped: tuple[str, ...] = ()) -> None:
        self._items = items
        self._names = {name for name, _ in items} | set(dropped)

    def items(self) -> list[tuple[str, str]]:
        return self._items

    def __contains__(self, name: str) -> bool:
        return name in self._names

    def get(self, name: str, default: str | None = None) -> str | None:
        return next((value for key, value in self._items if key == name), default)


@dataclass
class Scope:
    headers: Headers
    method: str = "POST"
    path: str = "/models/m/predict"
    query_string: str = "top_k=2"
    client: str = "10.1.2.3:5123"
    proto: str = "http"


@dataclass
class Protocol:
    """Body chunks to hand out (None: the client stops sending), and the response written."""

    chunks: list[bytes | None] = field(default_factory=list)
    delay_s: float = 0.0
    reads: int = 0
    response: tuple[int, list[tuple[str, str]], bytes] | None = None

    async def __call__(self) -> bytes:
        return b"".join([c async for c in self])

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.reads += 1
            await asyncio.sleep(self.delay_s)
            if chunk is None:
                raise ProtocolClosed("RSGI transport is closed")
            yield chunk

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.response = (status, headers, body)


def call(
    app: GatewayApp,
    headers: list[tuple[str, str]],
    protocol: Protocol,
    dropped: tuple[str, ...] = (),
) -> tuple[int, dict[str, str], dict[str, object]]:
    asyncio.run(app(Scope(Headers(headers, dropped)), protocol))  # type: ignore[arg-type]
    assert protocol.response is not None
    status, response_headers, body = protocol.response
    return status, dict(response_headers), orjson.loads(body)


def app_for(gateway: Gateway, timeout_s: float = 1.0) -> GatewayApp:
    return GatewayApp(gateway, BodyLimits(gateway.max_body, timeout_s), warm_up=False)


AUTH = ("authorization", f"Bearer {TOKEN}")


def test_the_event_holds_the_headers_folded_as_api_gateway_does_from_the_dict_the_app_made() -> (
    None
):
    """The app hands its headers by name (read once for the framing) to the event as they are
    where nothing needs folding; a repeated name or a cookie is folded from the pairs."""
    heads = [
        [AUTH, ("x-a", "1"), ("user-agent", "curl")],
        [AUTH, ("x-a", "1"), ("x-a", "2")],
        [AUTH, ("cookie", "a=1; b=2"), ("x-a", "1")],
    ]
    gateway = RecordingGateway()
    for headers in heads:
        call(app_for(gateway), headers, Protocol())
    events = [build_event(request, "POST", "/models/{m}/predict", {}) for request in gateway.seen]
    assert [request.by_name is not None for request in gateway.seen] == [True, False, False]
    assert [event["headers"]["x-a"] for event in events] == ["1", "1,2", "1"]
    assert events[2]["cookies"] == ["a=1", "b=2"] and "cookie" not in events[2]["headers"]
    for request, event in zip(gateway.seen, events, strict=True):
        folded = build_event(replace(request, by_name=None), "POST", "/models/{m}/predict", {})
        assert (event["headers"], event.get("cookies")) == (
            folded["headers"],
            folded.get("cookies"),
        )


def test_an_admitted_request_reaches_the_gateway_whole() -> None:
    gateway = RecordingGateway()
    protocol = Protocol([b'{"inputs":', b" [1]}"])
    status, _, _ = call(app_for(gateway), [AUTH, ("content-length", "16")], protocol)
    assert status == 200
    (request,) = gateway.seen
    assert (request.method, request.path, request.query) == ("POST", "/models/m/predict", "top_k=2")
    assert (request.body, request.source_ip) == (b'{"inputs": [1]}', "10.1.2.3")


def test_no_token_with_expect_is_401_and_the_body_is_never_read() -> None:
    gateway, protocol = RecordingGateway(), Protocol([b"x" * 10])
    head = [("content-length", "10"), ("expect", "100-continue")]
    status, headers, body = call(app_for(gateway), head, protocol)
    assert (status, body) == (401, {"error": "missing or invalid bearer token"})
    assert headers["www-authenticate"] == "Bearer" and headers["connection"] == "close"
    # Exactly this: kserve's client shows the error's message only when the type is `==` it.
    assert headers["content-type"] == "application/json"
    assert protocol.reads == 0 and gateway.seen == []


def test_no_token_without_expect_is_401_after_the_body_sent_anyway_is_dropped() -> None:
    """A sender that writes the body before it reads (nginx) must not meet a reset socket."""
    gateway, protocol = RecordingGateway(), Protocol([b"x" * 6, b"x" * 4])
    status, headers, body = call(app_for(gateway), [("content-length", "10")], protocol)
    assert (status, body) == (401, {"error": "missing or invalid bearer token"})
    assert protocol.reads == 2 and gateway.seen == [] and "connection" not in headers


def test_a_routing_key_the_server_could_not_decode_is_400_not_routed_at_random() -> None:
    """`x-aiaas-routing-key: josé@example.com`: granian drops the value, keeps the name."""
    gateway, protocol = RecordingGateway(), Protocol([b"{}"])
    head = [AUTH, ("content-length", "2")]
    status, _, body = call(app_for(gateway), head, protocol, dropped=("x-aiaas-routing-key",))
    assert (status, body) == (400, {"error": UNREADABLE_KEY})
    assert gateway.seen == [] and protocol.reads == 1  # its body read and dropped, as a 401's
    # Unauthenticated, it is the 401 still; a key read (a second, ASCII value) is routed by.
    status, _, _ = call(app_for(gateway), [], Protocol(), dropped=("x-aiaas-routing-key",))
    assert status == 401
    keyed = [AUTH, ("x-aiaas-routing-key", "tenant-7")]
    assert call(app_for(gateway), keyed, Protocol(), dropped=("x-aiaas-routing-key",))[0] == 200


def test_a_declared_length_over_the_limit_is_413_and_the_body_is_never_read() -> None:
    gateway, protocol = RecordingGateway(), Protocol([b"x" * 101])
    status, headers, body = call(app_for(gateway), [AUTH, ("content-length", "101")], protocol)
    assert (status, body) == (413, {"error": "request body is over the 100 byte limit"})
    assert headers["connection"] == "close" and protocol.reads == 0


def test_a_chunked_body_is_refused_at_the_chunk_that_crosses_the_limit() -> None:
    gateway = RecordingGateway()
    protocol = Protocol([b"x" * 60, b"x" * 60, b"x" * 60, b"x" * 60])
    status, _, body = call(app_for(gateway), [AUTH, ("transfer-encoding", "chunked")], protocol)
    assert (status, body) == (413, {"error": "request body is over the 100 byte limit"})
    assert gateway.seen == []
    assert protocol.reads == 4  # refused at the 2nd, the rest read and dropped: its client reads it


def test_the_rest_of_a_chunked_body_over_the_limit_is_dropped_up_to_its_bound() -> None:
    protocol = Protocol([b"x" * 60, b"x" * 60] + [b"x" * (1 << 20)] * 64)
    status, headers, _ = call(
        app_for(RecordingGateway()), [AUTH, ("transfer-encoding", "chunked")], protocol
    )
    assert (status, headers["connection"]) == (413, "close")
    assert protocol.reads == 2 + (DRAIN_MAX_BYTES >> 20) + 1  # then cut, the rest unread


def test_a_body_slower_than_the_timeout_is_408() -> None:
    gateway = RecordingGateway()
    protocol = Protocol([b"{", b"}"], delay_s=0.3)
    status, headers, body = call(
        app_for(gateway, timeout_s=0.2), [AUTH, ("content-length", "2")], protocol
    )
    assert (status, body) == (408, {"error": "request body not received within 0.2 s"})
    assert headers["connection"] == "close" and gateway.seen == []


def test_a_body_cut_short_is_400() -> None:
    gateway = RecordingGateway()
    protocol = Protocol([b"{", None])
    status, _, body = call(app_for(gateway), [AUTH, ("content-length", "20")], protocol)
    assert (status, body) == (400, {"error": "the request body ended before its declared length"})


def test_a_request_without_a_body_is_not_read() -> None:
    gateway, protocol = RecordingGateway(token=None), Protocol([b"never"])
    status, _, _ = call(app_for(gateway), [], protocol)
    assert status == 200 and protocol.reads == 0 and gateway.seen[0].body == b""


def test_a_first_call_runs_on_a_thread_and_cheap_ones_inline_after() -> None:
    threads: list[str] = []

    class ThreadGateway(RecordingGateway):
        def dispatch(self, request: GatewayRequest, defer: bool = False) -> GatewayResponse:
            threads.append(threading.current_thread().name)
            return super().dispatch(request)

    app = app_for(ThreadGateway(token=None))

    async def three() -> None:
        for _ in range(3):
            await app(Scope(Headers([])), Protocol())  # type: ignore[arg-type]

    asyncio.run(three())
    assert threads[0].startswith("aiaas-fn")  # it may be a cold start
    assert threads[1:] == [threading.current_thread().name] * 2


def test_an_inline_route_that_turns_slow_goes_to_a_thread_within_a_few_timed_calls() -> None:
    """Inline calls are timed one in INLINE_TIMED_EVERY (reading thread CPU time: a system call)."""
    from infra.local.timing import INLINE_TIMED_EVERY, OFFLOAD_AFTER_S

    threads: list[str] = []
    slow = threading.Event()

    class TurningGateway(RecordingGateway):
        def dispatch(self, request: GatewayRequest, defer: bool = False) -> GatewayResponse:
            threads.append(threading.current_thread().name)
            if slow.is_set():  # burn CPU, as a big batch parsed in Python would
                end = time.thread_time() + OFFLOAD_AFTER_S * 20
                while time.thread_time() < end:
                    pass
            return super().dispatch(request)

    app = app_for(TurningGateway(token=None))

    async def calls(count: int) -> None:
        for _ in range(count):
            await app(Scope(Headers([])), Protocol())  # type: ignore[arg-type]

    asyncio.run(calls(2))
    assert threads[-1] == threading.current_thread().name  # inline now
    slow.set()
    asyncio.run(calls(INLINE_TIMED_EVERY * 3))
    assert threads[-1].startswith("aiaas-fn")  # the timed calls saw it and moved it


class ThreadsGateway(RecordingGateway):
    """Records the thread each call ran on; a call's `work` (if any) runs in it first."""

    def __init__(self) -> None:
        super().__init__(token=None, max_body=1 << 20)
        self.threads: list[str] = []
        self.work: Callable[[], None] | None = None

    def dispatch(self, request: GatewayRequest, defer: bool = False) -> GatewayResponse:
        self.threads.append(threading.current_thread().name)
        if self.work is not None:
            self.work()
        return super().dispatch(request)


def calls(app: GatewayApp, count: int, body: bytes = b"") -> None:
    async def run() -> None:
        for _ in range(count):
            head = [("content-length", str(len(body)))] if body else []
            await app(Scope(Headers(head)), Protocol([body] if body else []))  # type: ignore[arg-type]

    asyncio.run(run())


def test_a_body_over_the_inline_size_runs_on_a_thread_on_an_inline_route() -> None:
    """A route's average is learned on its usual bodies: a big one parses for milliseconds."""
    from infra.local.timing import INLINE_MAX_BODY

    gateway = ThreadsGateway()
    app = app_for(gateway)
    calls(app, 2, b"x" * 100)
    assert gateway.threads[-1] == threading.current_thread().name  # inline now
    calls(app, 1, b"x" * (INLINE_MAX_BODY + 1))
    assert gateway.threads[-1].startswith("aiaas-fn")
    calls(app, 1, b"x" * 100)
    assert gateway.threads[-1] == threading.current_thread().name  # the route stays inline


def test_an_inline_call_that_held_the_loop_working_sends_its_route_to_a_thread() -> None:
    """Judged by the loop thread's CPU time over the call: a call stalled as long without
    working (a preempted process: here a sleep, under OVERRUN_WALL_S) leaves its route inline."""
    from infra.local.timing import OVERRUN_S, OVERRUN_WALL_S

    gateway = ThreadsGateway()
    app = app_for(gateway)
    calls(app, 2)
    assert gateway.threads[-1] == threading.current_thread().name
    gateway.work = lambda: time.sleep(min(OVERRUN_S * 3, OVERRUN_WALL_S / 2))
    calls(app, 2)
    assert gateway.threads[-2:] == [threading.current_thread().name] * 2

    def spin() -> None:  # CPU, as an onnxruntime Loop counted by the request
        end = time.thread_time() + OVERRUN_S * 2
        while time.thread_time() < end:
            pass

    gateway.work = spin
    calls(app, 1)  # inline: held the loop
    gateway.work = None
    calls(app, 3)
    assert gateway.threads[-4] == threading.current_thread().name
    assert all(name.startswith("aiaas-fn") for name in gateway.threads[-3:])


def test_a_route_that_answered_only_5xx_so_far_is_still_asked_before_its_calls() -> None:
    """Its probe was kept only after a call under 500: a version failing to load (503s), then
    fixed or promoted to one whose cost a value sets, had its first good heavy call inline,
    holding the loop 2.65 s (review_rev9 2)."""
    probed: list[str] = []

    class FailingGateway(RecordingGateway):
        def dispatch(self, request: GatewayRequest, defer: bool = False) -> GatewayResponse:
            return GatewayResponse(503, [("content-type", "application/json")], b"{}")

        def varies_probe(self, method: str, path: str) -> Callable[[], bool] | None:
            probed.append(f"{method} {path}")
            return lambda: True

    app = app_for(FailingGateway(token=None))
    asyncio.run(app(Scope(Headers([])), Protocol()))  # type: ignore[arg-type]
    assert len(probed) == 1 and app.timing.slow(probed[0])
