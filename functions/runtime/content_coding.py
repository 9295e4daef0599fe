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
    inflater = zlib.decompressobj(wbits)
    try:
        inflated = inflater.decompress(body, max_body + 1)
    except zlib.error:
        raise BadRequest(f"request body says Content-Encoding {name} but is not") from None
    if len(inflated) > max_body:
        raise PayloadTooLarge(f"request body is over the {max_body} byte limit once inflated")
    if not inflater.eof:
        raise BadRequest(f"request body ({name}) is cut short")
    return inflated
