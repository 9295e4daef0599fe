"""How `aiaas serve`'s gateway app reads a request's body, and drops one it refused.

A body framed by its length (already checked against the limit on its head) is read whole; a
chunked one is counted as it arrives and refused once over the limit; either within the body
timeout (one sweeper keeps the deadlines: deadlines.py). A refused request's body is read and
dropped for at most DRAIN_S, so a sender that writes before it reads (nginx) gets the answer.
`RequestBodies` is a base class of `GatewayApp` (app.py): its methods are the app's own, no
extra hop on the request path.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from granian.rsgi import ProtocolClosed, ProtocolError  # type: ignore[attr-defined]

from infra.local.chunked import BodyData, CutBody
from infra.local.deadlines import Deadlines
from infra.local.payload import GatewayResponse

if TYPE_CHECKING:
    from granian.rsgi import HTTPProtocol  # type: ignore[attr-defined]

# A refused request's body (401, 403, 503 over --max-in-flight) is read and dropped for at most
# this long, then the connection is closed. A sender that writes its body before it reads (nginx)
# sends it at once; one that trickles it, or never sends it, must not hold it all the body timeout.
DRAIN_S = 2.0


@dataclass(frozen=True)
class BodyLimits:
    """What the app enforces on request bodies (granian enforces the head)."""

    max_bytes: int
    timeout_s: float


class BodyTooLarge(Exception):
    """A body read past `BodyLimits.max_bytes` (answered 413, or its drain given up)."""


class RequestBodies:
    """Reads request bodies within `limits` (a base class of `GatewayApp`)."""

    def __init__(self, limits: BodyLimits) -> None:
        self.limits = limits
        self._deadlines = Deadlines(limits.timeout_s)
        self._drains = Deadlines(min(DRAIN_S, limits.timeout_s))

    def _close_bodies(self) -> None:
        """Stop the deadlines' sweepers (the app is stopping)."""
        self._deadlines.close()
        self._drains.close()

    def _body(
        self, protocol: HTTPProtocol, declared: int | None, chunked: bool
    ) -> Awaitable[bytes] | None:
        """The body's read, within its deadline, for the caller to await (no coroutine of
        its own here, one layer less on every request); None: there is no body."""
        if not declared and not chunked:
            return None
        if declared is not None:  # framed by its length, already checked against the limit
            return self._deadlines.within(protocol())
        return self._deadlines.within(self._chunks(protocol))

    async def _refused(
        self,
        protocol: HTTPProtocol,
        headers: list[tuple[str, str]],
        declared: int | None,
        chunked: bool,
        refused: GatewayResponse,
    ) -> GatewayResponse:
        """`refused`, once the body sent with it is dropped (`_drained`); closing the
        connection if it was not."""
        if (declared or chunked) and not await self._drained(protocol, headers, refused):
            return closing(refused)
        return refused

    async def _drained(
        self, protocol: HTTPProtocol, headers: list[tuple[str, str]], refused: GatewayResponse
    ) -> bool:
        """Whether the body of a refused request was read and dropped, so that the answer
        reaches a sender that writes the whole body before it reads (nginx): closed with the
        body unread, the socket reset, nginx's write failed (EPIPE) and its client got a 502
        instead of the 401, one in four 1.3 MB requests. Not read: a body over the limit (413)
        and one the client waits to be asked for (`Expect: 100-continue`, answered without
        `100 Continue`). Read for at most DRAIN_S: a body that never came held its connection
        for the whole body timeout, unauthenticated."""
        if refused.status == 413 or any(
            name == "expect" and value.lower() == "100-continue" for name, value in headers
        ):
            return False
        try:
            await self._drains.within(self._dropped(protocol))
        except (BodyTooLarge, TimeoutError, ProtocolClosed, ProtocolError, CutBody):
            return False
        return True

    async def _dropped(self, protocol: HTTPProtocol) -> None:
        size = 0
        async for chunk in BodyData(protocol):
            size += len(chunk)
            if size > self.limits.max_bytes:
                raise BodyTooLarge

    async def _chunks(self, protocol: HTTPProtocol) -> bytes:
        chunks, size = [], 0
        async for chunk in BodyData(protocol):
            size += len(chunk)
            if size > self.limits.max_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
        return b"".join(chunks)


def body_framing(headers: dict[str, str]) -> tuple[int | None, bool]:
    """(declared content-length or None, chunked?) from request headers by (lower-case) name."""
    length = headers.get("content-length")  # hyper refuses a malformed length before us
    declared = int(length) if length is not None and length.isascii() and length.isdigit() else None
    return declared, "transfer-encoding" in headers


def closing(response: GatewayResponse) -> GatewayResponse:
    """The response, and the connection closed after it: a body we did not read is left behind."""
    response.headers.append(("connection", "close"))
    return response
