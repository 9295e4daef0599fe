"""A chunked request body's data, or `CutBody` when the stream did not end in its last chunk.

granian's body iterator (`async for chunk in protocol`) ends quietly on a broken chunked
stream: a client that died before the zero-size last chunk, or a chunk size that is not hex,
and the gateway dispatched what had come as the whole body (a 200 predicting from half a JSON
document, a 202 for a batch file cut at its 500th of 1,000 rows, scored as a succeeded job).
`await protocol()` raises on the same bytes, but reads the whole body with no limit, so it
cannot be used where the size is counted as it arrives.

How the iterator tells the two apart (granian 2.8, src/rsgi/io.rs `__anext__`, over hyper 1.x):
each frame of hyper's body is yielded as bytes, a data frame as its data and anything else as
b"": an error (the cut or malformed stream) and a trailers frame alike; the stream's end is one
more b"", then the iteration stops. hyper yields no empty data frame (its decoder reads a
zero-size chunk as the end). So a body that ended in its last chunk gives data..., b"", and
one that did not gives data..., b"", b"". Trailers (which no HTTP/1.1 client we know of sends
on a request) look the same and are refused with it: checked on granian 2.8.9, a body with
trailers and one whose chunk size is not hex both give data, b"", b"", and neither has closed
the connection by then (`client_disconnect` not done). A `Trailer` header tells nothing (a
client that declares it can still be cut), and `await protocol()`, which does tell them apart
(hyper's collect: an error, or data with trailers), has no size limit. A fix belongs in
granian (a trailers frame yielded apart from an error). tests/infra/test_serve_hostile_bodies.py
sends each case over raw sockets to `aiaas serve`, so a granian that changes this fails there.
"""

from __future__ import annotations

from collections.abc import AsyncIterable

CUT_MESSAGE = (
    "the chunked request body was cut off or malformed: it must end with its zero-size last "
    "chunk (and carry no trailers)"
)


class CutBody(Exception):
    """The chunked body did not end in its last chunk (or carried trailers)."""


class BodyData:
    """The data of granian's body iterator `body`; CutBody (at its end) when it was broken.
    An iterator, not an async generator: one left unfinished (a 413 mid-body) needs no
    closing."""

    __slots__ = ("_body", "_ended")

    def __init__(self, body: AsyncIterable[bytes]) -> None:
        self._body = body.__aiter__()
        self._ended = False

    def __aiter__(self) -> BodyData:
        return self

    async def __anext__(self) -> bytes:
        while True:
            chunk = await self._body.__anext__()  # StopAsyncIteration once the stream ended
            if self._ended:  # a frame after one that was not data: hyper's error (or trailers)
                raise CutBody
            if chunk:
                return chunk
            self._ended = True
