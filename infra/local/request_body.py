"""How `aiaas serve`'s gateway app reads a request's body, and drops one it refused.

A body framed by its length (already checked against the limit on its head) is read whole; a
chunked one is counted as it arrives and refused once over the limit; either within the body
timeout (one sweeper keeps the deadlines: deadlines.py). A refused request's body is read and
dropped for at most DRAIN_S, so a sender that writes before it reads (nginx) gets the answer; so
is the rest of a chunked body over the limit, up to DRAIN_MAX_BYTES more (a lingering close).
`RequestBodies` is a base class of `GatewayApp` (app.py): its methods are the app's own, no
extra hop on the request path.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from granian.rsgi import ProtocolClosed, ProtocolError  # type: ignore[attr-defined]

from infra.local.chunked import BodyData, CutBody
from infra.local.deadlines import Deadlines
from infra.local.payload import GatewayResponse, error

if TYPE_CHECKING:
    from granian.rsgi import HTTPProtocol  # type: ignore[attr-defined]

# A refused request's body (401, 403, 503 over --max-in-flight) is read and dropped for at most
# this long, then the connection is closed. A sender that writes its body before it reads (nginx)
# sends it at once; one that trickles it, or never sends it, must not hold it all the body timeout.
DRAIN_S = 2.0
# The rest of a chunked body over the limit is read and dropped, for at most DRAIN_S and this many
# bytes past the limit, before its 413 and the close (Apache's lingering close, nginx's
# lingering_time): closed with the rest unread, the socket was reset under a client still writing,
# and one that stops at a failed write (curl, nginx) never saw the 413. curl -T sending 11 MiB
# chunked with a busy loop on the other core lost it 10 times in 100; a client that paces its
# writes, every time. A body that goes on past this is still cut here, memory flat.
DRAIN_MAX_BYTES = 4 << 20


@dataclass(frozen=True)
class BodyLimits:
    """What the app enforces on request bodies (granian enforces the head)."""

    max_bytes: int
    timeout_s: float


class BodyTooLarge(Exception):
    """A body read past `BodyLimits.max_bytes` (answered 413, or its drain given up); `rest`:
    the chunked body's data still to come, read on by `_too_large`."""

    def __init__(self, rest: AsyncIterable[bytes] | None = None) -> None:
        super().__init__()
        self.rest = rest


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
            await self._drains.within(self._dropped(BodyData(protocol), self.limits.max_bytes))
        except (BodyTooLarge, TimeoutError, ProtocolClosed, ProtocolError, CutBody):
            return False
        return True

    async def _too_large(self, too_large: BodyTooLarge) -> GatewayResponse:
        """The 413 of a body over the limit, once the rest of a chunked one is read and
        dropped: for at most DRAIN_S and DRAIN_MAX_BYTES (its client may still be writing)."""
        if too_large.rest is not None:
            given_up = (BodyTooLarge, TimeoutError, ProtocolClosed, ProtocolError, CutBody)
            with contextlib.suppress(*given_up):  # closed with the rest unread, as before
                await self._drains.within(self._dropped(too_large.rest, DRAIN_MAX_BYTES))
        return closing(error(413, f"request body is over the {self.limits.max_bytes} byte limit"))

    async def _dropped(self, body: AsyncIterable[bytes], limit: int) -> None:
        size = 0
        async for chunk in body:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge

    async def _chunks(self, protocol: HTTPProtocol) -> bytes:
        chunks, size, body = [], 0, BodyData(protocol)
        async for chunk in body:
            size += len(chunk)
            if size > self.limits.max_bytes:
                raise BodyTooLarge(body)  # its rest read on by `_too_large`
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
