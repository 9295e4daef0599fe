"""Request bodies sent compressed (`Content-Encoding: gzip` or `deflate`), inflated within a limit.

One reader for every function that takes a body: the predict API (tritonclient's
`request_compression_algorithm` sends these) and the control plane (a client or a proxy that
compresses every request body it sends).

The work is linear in the body and bounded per compressed byte: a body of 314,570 empty gzip
members (6 MiB, the predict limit) took 43 s of the event loop when each member's remainder was
copied for the next (quadratic); the body is now read through one view, fed in pieces of at most
`PIECE` bytes (what a member leaves unread is copied once, at most a piece), and a body of more
than `MAX_MEMBERS` members is refused (a client sends one; bgzip's 64 KiB blocks are ~100 for
6 MiB inflated).
"""

from __future__ import annotations

import zlib

from functions.runtime.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

# Content-Encoding -> zlib's wbits
INFLATE_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}
GZIP_MAGIC = b"\x1f\x8b"
PIECE = 16 * 1024  # compressed bytes fed to zlib at a time
MAX_MEMBERS = 1024  # gzip members in one body


def inflate(body: bytes, coding: str, max_body: int) -> bytes:
    """A body sent with `Content-Encoding: gzip` or `deflate`, inflated; the limit holds for
    the inflated body too, checked as it inflates (a small bomb never grows past it)."""
    name = coding.strip().lower()
    if name in ("", "identity"):
        return body
    wbits = INFLATE_WBITS.get(name)
    if wbits is None:
        raise UnsupportedMediaType(
            f"Content-Encoding {coding!r} is not supported: send the body as it is, "
            "or gzip or deflate it"
        )
    view = memoryview(body)
    parts: list[bytes] = []
    offset, room = _member(view, 0, name, wbits, parts, max_body, max_body)
    # gzip: members one after another are one body (RFC 1952, as zcat reads them); only the
    # first was inflated and the rest dropped unsaid (a 200 answering half a request).
    members = 1
    while name != "deflate" and view[offset : offset + 2] == GZIP_MAGIC:
        members += 1
        if members > MAX_MEMBERS:
            raise BadRequest(
                f"request body has over {MAX_MEMBERS} gzip members: send it as one gzip stream"
            )
        offset, room = _member(view, offset, name, wbits, parts, room, max_body)
    rest = view[offset:]
    if rest.tobytes().strip(b"\0"):  # padding of zeros is what gzip's own tools leave
        raise BadRequest(f"request body has {len(rest)} bytes after its {name} data")
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _member(
    view: memoryview,
    offset: int,
    name: str,
    wbits: int,
    parts: list[bytes],
    room: int,
    max_body: int,
) -> tuple[int, int]:
    """The compressed stream at `offset` of `view`, inflated onto `parts` (at most `room`
    bytes); the offset just past it, and the room left."""
    inflater = zlib.decompressobj(wbits)
    while not inflater.eof:
        piece = view[offset : offset + PIECE]
        if not piece:
            raise BadRequest(f"request body ({name}) is cut short")
        try:
            inflated = inflater.decompress(piece, room + 1)
        except zlib.error:
            raise BadRequest(f"request body says Content-Encoding {name} but is not") from None
        if len(inflated) > room:
            raise PayloadTooLarge(f"request body is over the {max_body} byte limit once inflated")
        room -= len(inflated)
        if inflated:
            parts.append(inflated)
        # fed and not taken: after the stream's end (unused_data), or past max_length (none
        # under the limit: unconsumed_tail)
        offset += len(piece) - len(inflater.unused_data) - len(inflater.unconsumed_tail)
    return offset, room
