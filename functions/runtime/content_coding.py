"""Request bodies sent compressed (`Content-Encoding: gzip` or `deflate`), inflated within a limit.

One reader for every function that takes a body: the predict API (tritonclient's
`request_compression_algorithm` sends these) and the control plane (a client or a proxy that
compresses every request body it sends).
"""

from __future__ import annotations

import zlib

from functions.runtime.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

# Content-Encoding -> zlib's wbits
INFLATE_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}
GZIP_MAGIC = b"\x1f\x8b"


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
    inflated, rest = _member(body, name, wbits, max_body, max_body)
    # gzip: members one after another are one body (RFC 1952, as zcat reads them); only the
    # first was inflated and the rest dropped unsaid (a 200 answering half a request).
    while rest and name != "deflate" and rest[:2] == GZIP_MAGIC:
        more, rest = _member(rest, name, wbits, max_body - len(inflated), max_body)
        inflated += more
    if rest.strip(b"\0"):  # padding of zeros is what gzip's own tools leave
        raise BadRequest(f"request body has {len(rest)} bytes after its {name} data")
    return inflated


def _member(body: bytes, name: str, wbits: int, room: int, max_body: int) -> tuple[bytes, bytes]:
    """One compressed stream of `body`, inflated (at most `room` bytes), and what follows it."""
    inflater = zlib.decompressobj(wbits)
    try:
        inflated = inflater.decompress(body, room + 1)
    except zlib.error:
        raise BadRequest(f"request body says Content-Encoding {name} but is not") from None
    if len(inflated) > room:
        raise PayloadTooLarge(f"request body is over the {max_body} byte limit once inflated")
    if not inflater.eof:
        raise BadRequest(f"request body ({name}) is cut short")
    return inflated, inflater.unused_data
