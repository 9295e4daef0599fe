"""An HTTP proxy on loopback in front of the S3 server that answers as a failing S3 would.

Each fault is a switch on the proxy, matched on the request path:
- `deny`: 403 AccessDenied, as S3 answers a role without the permission;
- `deny_delete`: the same for DELETEs only (a role without s3:DeleteObject there); a
  DeleteObjects naming such keys is answered as S3 answers it, 200 with an AccessDenied error
  a key (it names only denied keys here: a mix would need a second request, refused 501);
- `slowdown`: 503 SlowDown for the next N requests (S3 throttling; botocore retries these);
- `internal_errors`: 500 InternalError for the next N requests (botocore retries these);
- `cut_download`: a GET's status and headers and half its body, then the connection closes,
  whatever the status (a 404's error document too); `cuts`: for the next N such GETs only;
  `reset`: the cut is a reset (RST), not a close (FIN: botocore parses an error document cut
  so as S3's answer, its status the code); `cut_after`: that many bytes of the body before the
  cut instead of half (0: none, so a reader resuming it never gets further);
- `short_download`: a GET's body cut to half, with a Content-Length to match (a proxy or a
  front end that lost the rest): only the object's checksum can tell; `shorts`: the next N only;
- `trickle`: a GET's status and headers at once, then its body `trickle_bytes` at a time every
  `trickle_every_s` (data within every read timeout, never a stall: an S3 or a network that is
  slow, not down), until the body is sent or the client goes (or `clear`, `stop`);
- `cut_upload`: a PUT's body is read halfway, then the connection closes with no answer;
- `cut_put_key`: the same, for PUTs of exactly this object (the path less its query ends with
  it), so one object of several whose names share a stem can fail;
- `delete_errors`: the next N DeleteObjects (-1: all) answered 200 with an InternalError for
  every key, as S3 answers one under partial failure (nothing deleted);
- `lose_delete`: the next DELETE whose path has this fragment is done by the server, then the
  connection closes without its answer (botocore retries it: the object is gone by then);
- `lie_etags`: every ETag the server sends is replaced by one of no object's;
- `hold_put(key)`: the next PUT of exactly this object waits at the proxy, its body read, until
  the test releases it, then goes on to the server (a request in flight while other clients
  go first: a race made deterministic).
Everything else is forwarded to the real server (moto) unchanged.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

FAKE_ETAG = '"00000000000000000000000000000000"'
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect"}


def s3_error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>{message}</Message><RequestId>proxy</RequestId></Error>"
    ).encode()


def denied_deletes(body: bytes, fragment: str) -> tuple[int, bytes] | None:
    """S3's answer to a DeleteObjects whose keys a role may not delete (those with `fragment`):
    200, an AccessDenied error a key; None when it names none of them."""
    keys = [key.decode() for key in re.findall(rb"<Key>(.*?)</Key>", body)]  # botocore's XML
    denied = [key for key in keys if fragment in key]
    if not denied:
        return None
    if len(denied) < len(keys):
        return 501, s3_error("NotImplemented", "the test proxy denies all of a batch or none")
    errors = "".join(
        f"<Error><Key>{key}</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        for key in denied
    )
    return (
        200,
        f'<?xml version="1.0" encoding="UTF-8"?><DeleteResult>{errors}</DeleteResult>'.encode(),
    )


def failed_deletes(body: bytes) -> bytes:
    """A DeleteObjects answer with S3's retryable per-key InternalError for every key named."""
    keys = [key.decode() for key in re.findall(rb"<Key>(.*?)</Key>", body)]
    errors = "".join(
        f"<Error><Key>{key}</Key><Code>InternalError</Code><Message>We encountered an internal "
        "error. Please try again.</Message></Error>"
        for key in keys
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><DeleteResult>{errors}</DeleteResult>'.encode()


@dataclass
class HeldPut:
    """A PUT held at the proxy: `arrived` once it is there; it goes on after `release`."""

    key: str
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    status: int = 0  # what the server answered it

    def wait(self) -> HeldPut:
        assert self.arrived.wait(60), f"no PUT of {self.key} reached the proxy"
        return self


class FaultyS3Proxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.deny: str | None = None  # path fragment
        self.deny_delete: str | None = None  # path fragment
        self.slowdown = self.internal_errors = 0
        self.cut_download: str | None = None
        self.cuts = -1  # -1: every GET cut_download matches; N: the next N, then none
        self.reset = False
        self.cut_after: int | None = None  # None: half the body
        self.short_download: str | None = None
        self.shorts = -1  # -1: every GET short_download matches; N: the next N, then none
        self.trickle: str | None = None  # path fragment
        self.trickle_bytes, self.trickle_every_s = 64, 0.05
        self.trickled = 0  # bytes sent so far by trickles
        self._calm = threading.Event()  # set: every trickle ends
        self.cut_upload: str | None = None
        self.cut_put_key: str | None = None
        self.lie_etags = False
        self.delete_errors = 0
        self.lose_delete: str | None = None
        self.holds: list[HeldPut] = []
        self.seen: list[tuple[str, str]] = []
        # Port 0: the kernel's free port, bound at once (no window for another process)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = int(self._server.server_address[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FaultyS3Proxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._calm.set()
        self._server.shutdown()
        self._server.server_close()

    def clear(self) -> None:
        self.deny = self.deny_delete = self.cut_download = None
        self.cut_upload = self.cut_put_key = None
        self.slowdown, self.internal_errors, self.cuts, self.lie_etags = 0, 0, -1, False
        self.reset, self.delete_errors, self.lose_delete = False, 0, None
        self.cut_after = self.short_download = None
        self.shorts = -1
        self.trickle = None
        self._calm.set()
        self._calm = threading.Event()

    def _trickle(self, out: Any, data: bytes) -> None:
        calm = self._calm
        for at in range(0, len(data), self.trickle_bytes):
            if calm.wait(self.trickle_every_s):
                return
            try:
                out.write(data[at : at + self.trickle_bytes])
                out.flush()
            except OSError:  # the client went: the rest is never sent
                return
            self.trickled += len(data[at : at + self.trickle_bytes])

    def hold_put(self, key: str) -> HeldPut:
        held = HeldPut(key)
        self.holds.append(held)
        return held

    def _held(self, command: str, path: str) -> HeldPut | None:
        bare, _, query = path.partition("?")
        if command != "PUT" or "uploadId" in query:  # whole-object PUTs (not multipart parts)
            return None
        for held in self.holds:
            if not held.arrived.is_set() and bare.endswith(f"/{held.key}"):
                held.arrived.set()
                return held
        return None

    def cuts_upload(self, path: str) -> bool:
        exact = self.cut_put_key and path.split("?")[0].endswith(f"/{self.cut_put_key}")
        return bool(exact or (self.cut_upload and self.cut_upload in path))

    def cutting(self, command: str, path: str) -> bool:
        """Whether this request's answer is to be cut (`cut_download`, `cuts`)."""
        cut = self.cut_download
        if not cut or command != "GET" or cut not in path or self.cuts == 0:
            return False
        self.cuts -= 1 if self.cuts > 0 else 0
        return True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _relay(self) -> None:
                proxy.seen.append((self.command, self.path))
                length = int(self.headers.get("content-length") or 0)
                if self.command == "PUT" and proxy.cuts_upload(self.path):
                    self.rfile.read(length // 2)
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                body = self.rfile.read(length) if length else b""
                held = proxy._held(self.command, self.path)
                if held is not None:
                    held.release.wait(60)
                if self.command == "POST" and "?delete" in self.path and proxy.deny_delete:
                    denied = denied_deletes(body, proxy.deny_delete)
                    if denied is not None:
                        return self._answer(*denied)
                if self.command == "POST" and "?delete" in self.path and proxy.delete_errors:
                    proxy.delete_errors -= 1 if proxy.delete_errors > 0 else 0
                    return self._answer(200, failed_deletes(body))
                deletes = self.command == "DELETE" and proxy.deny_delete
                if (proxy.deny and proxy.deny in self.path) or (
                    deletes and proxy.deny_delete in self.path
                ):
                    return self._answer(403, s3_error("AccessDenied", "Access Denied"))
                if proxy.slowdown > 0:
                    proxy.slowdown -= 1
                    return self._answer(503, s3_error("SlowDown", "Please reduce your rate"))
                if proxy.internal_errors > 0:
                    proxy.internal_errors -= 1
                    return self._answer(500, s3_error("InternalError", "Please try again"))
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body, headers=headers)
                reply = upstream.getresponse()
                data = reply.read()
                upstream.close()
                if held is not None:
                    held.status = reply.status
                lost = proxy.lose_delete
                if lost and self.command == "DELETE" and lost in self.path:
                    proxy.lose_delete = None  # done by the server; the answer never comes
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return None
                short = proxy.short_download
                if short and short in self.path and self.command == "GET" and proxy.shorts:
                    proxy.shorts -= 1 if proxy.shorts > 0 else 0
                    data = data[: len(data) // 2]
                self.send_response(reply.status)
                for name, value in reply.getheaders():
                    if name.lower() in HOP_BY_HOP:
                        continue
                    if name.lower() == "content-length" and self.command != "HEAD":
                        continue  # sent below, for the body as relayed (a HEAD's is the object's)
                    if name.lower() == "etag" and proxy.lie_etags:
                        value = FAKE_ETAG
                    self.send_header(name, value)
                if self.command != "HEAD":
                    self.send_header("content-length", str(len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return None
                if proxy.trickle and proxy.trickle in self.path and self.command == "GET":
                    proxy._trickle(self.wfile, data)
                    self.close_connection = True
                    return None
                if proxy.cutting(self.command, self.path) and len(data) > 1:
                    after = proxy.cut_after
                    self.wfile.write(data[: len(data) // 2 if after is None else after])
                    self.wfile.flush()
                    if proxy.reset:  # linger 0: the close sends RST
                        linger = struct.pack("ii", 1, 0)
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                        self.connection.close()
                    else:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return None
                self.wfile.write(data)
                return None

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/xml")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            # http.server dispatches on these names.
            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay  # noqa: N815

        return Handler


@contextlib.contextmanager
def proxied(moto_port: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyS3Proxy]:
    """The fault proxy in front of moto, where S3 clients made from now on send requests
    (three attempts each, so a fault is retried a little, not for long)."""
    proxy = FaultyS3Proxy(moto_port).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    monkeypatch.setenv("AIAAS_S3_MAX_ATTEMPTS", "3")
    try:
        yield proxy
    finally:
        proxy.stop()
