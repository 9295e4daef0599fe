"""Control-plane request bodies sent compressed, inflated before FastAPI reads them.

A client or a proxy that compresses what it sends (`Content-Encoding: gzip`, as the predict API
takes it) got a 400 "body is not valid JSON: not UTF-8 (byte 0x8b ...)" here, which named
neither the encoding nor the fix. The body is inflated as the predict API inflates it
(functions/runtime/content_coding.py): gzip or deflate within the limit, a 415 naming the
encodings taken for any other. A compressed body over the limit is a 413 as it comes (cut at
the limit and inflated, it read as a 400 "cut short").
"""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from functions.runtime.content_coding import inflate
from functions.runtime.errors import AiaasError, PayloadTooLarge, public_answer

MAX_INFLATED_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload: no control body nears it


class EncodedBody:
    """ASGI middleware: a request body reaches the app whole and inflated (without its
    Content-Encoding), or a 413 when it is over the limit, sent compressed or not: a plain
    7 MB body was taken here where a gzipped one over 6 MB was refused (and Lambda refuses
    one over 6 MB before the function runs, so `aiaas serve` and the stack now agree)."""

    def __init__(self, app: ASGIApp, plain_limit: int = MAX_INFLATED_BYTES) -> None:
        self.app = app
        # a body as the app reads it, sent as it is or inflated: a raised
        # AIAAS_CONTROL_MAX_UPLOAD_BYTES took an 8 MB CSV plain and refused it gzipped (3 MB)
        self.plain_limit = plain_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        coding = _coding(scope)
        limit = self.plain_limit  # inflated too: AIAAS_CONTROL_MAX_UPLOAD_BYTES held for gzip
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nothing to answer
                return
            body += message.get("body", b"")
            if len(body) > limit or not message.get("more_body", False):
                break
        try:
            if len(body) > limit:  # cut here, a compressed one would inflate as "cut short"
                sent = " (compressed)" if coding is not None else ""
                raise PayloadTooLarge(f"request body is over the {limit} byte limit{sent}")
            inflated = bytes(body) if coding is None else inflate(bytes(body), coding, limit)
        except PayloadTooLarge as exc:  # sent as it is or compressed: the same way round it
            answer = JSONResponse({"error": public_answer(exc) + _hint(scope)}, status_code=413)
            await answer(scope, receive, send)
            return
        except AiaasError as exc:
            answer = JSONResponse({"error": public_answer(exc)}, status_code=int(exc.status))
            await answer(scope, receive, send)
            return
        await self.app(_plain(scope, len(inflated)), _once(inflated), send)


def _hint(scope: Scope) -> str:
    """What to do instead, for a batch input uploaded as the body (PUT .../jobs/FILE)."""
    if scope["method"] == "PUT" and scope["path"].startswith("/control/batch/"):
        return (
            '; put the file under uploads/ in the bucket and POST {"source": "uploads/..."} '
            "to .../jobs instead"
        )
    return ""


def _coding(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-encoding":
            return str(value.decode("latin-1"))
    return None


def _plain(scope: Scope, length: int) -> Scope:
    """The scope as if the body had been sent as it is now."""
    dropped = (b"content-encoding", b"content-length")
    headers = [(k, v) for k, v in scope["headers"] if k.lower() not in dropped]
    return {**scope, "headers": [*headers, (b"content-length", str(length).encode())]}


def _once(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:  # the body was all given: as a server says once the client is done
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
