"""The CLI's first contact with an S3 endpoint of the user's: one raw `HEAD /` before the
first request, answered within the connect timeout or said at once.

An endpoint that takes the connection and never answers (a wrong port that a server of
another kind holds open, a firewall that accepts and drops) cost each `aiaas` command one full
read timeout (30 s by default: the read timeout must allow a large object's slow first byte, so
it cannot be shortened for every request). Before the client's first request the CLI sends
one `HEAD /` on a connection of its own and waits for any byte of an answer, at most
`AIAAS_S3_CONNECT_TIMEOUT` (5 s; the read timeout when shorter): any answer, even an error or
a closed connection, lets the request go as before; none is said as the endpoint not
answering. Only the CLI asks for it (`probing`): a function's cold start on Lambda or in
`aiaas serve` would pay one more connection (and TLS handshake) on every start, and there
botocore's own first-contact rule (s3answers.py) gives up after one timeout. Only for an
endpoint the user set (AWS's own answer), and not through a proxy (the probe would bypass it):
one botocore would use for it, the proxy of its scheme (HTTP_PROXY, HTTPS_PROXY) where NO_PROXY
does not name it. The probe sends no credentials (not the URL's user info either): a TLS probe
does not check the certificate.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

_on = threading.Event()  # the CLI's commands (`probing`); never a function's process


@contextlib.contextmanager
def probing() -> Iterator[None]:
    """S3 clients built meanwhile probe their endpoint before their first request."""
    _on.set()
    try:
        yield
    finally:
        _on.clear()


def silence(endpoint: str, wait_s: float) -> str | None:
    """What `endpoint` did instead of answering a `HEAD /` within `wait_s`, or None: it
    answered, or failed in a way the request itself says at once (refused, unresolvable)."""
    url = urlsplit(endpoint)
    host, tls = url.hostname or "", url.scheme == "https"
    deadline = time.monotonic() + wait_s
    try:
        raw = socket.create_connection((host, url.port or (443 if tls else 80)), timeout=wait_s)
    except TimeoutError:
        return f"did not take the connection within {wait_s:g} s"
    except OSError:
        return None
    try:
        with raw:
            raw.settimeout(max(0.01, deadline - time.monotonic()))
            named = host_header(host, url.port)
            line = f"HEAD / HTTP/1.1\r\nHost: {named}\r\nConnection: close\r\n\r\n"
            if tls:
                import ssl

                context = ssl.create_default_context()
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                with context.wrap_socket(raw, server_hostname=host) as secure:
                    secure.sendall(line.encode())
                    secure.recv(1)
            else:
                raw.sendall(line.encode())
                raw.recv(1)
    except TimeoutError:  # ssl's handshake timeout included (socket.timeout is TimeoutError)
        return f"accepted the connection but sent no answer within {wait_s:g} s"
    except OSError:
        return None  # reset, a TLS error: an answer of a kind, the request says what
    return None


def host_header(host: str, port: int | None) -> str:
    """The Host of a request to `host`:`port`, as botocore's: never the URL's user info
    (`http://KEY:SECRET@host:9000`, sent in the clear by the probe's `netloc`)."""
    named = f"[{host}]" if ":" in host else host  # an IPv6 address
    return named if port is None else f"{named}:{port}"


def before_first_request(endpoint: str, config: Any, fail: Callable[[str, str], Exception]) -> Any:
    """A `before-send` handler probing `endpoint` once, when the CLI asked for it (`probing`)
    and no proxy stands between; None otherwise. `fail(what, setting)`: the error to raise."""
    if not _on.is_set():
        return None  # imported below only where it probes: not on a function's cold start
    import urllib.request

    url = urlsplit(endpoint)
    # The proxy botocore sends this endpoint's requests through: its scheme's, unless NO_PROXY
    # names it. Any variable set stopped the probe, NO_PROXY alone (set by many clusters) too.
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(url.hostname or ""):
        return None
    done = threading.Lock()
    connect, read = float(config.connect_timeout), float(config.read_timeout)
    wait, setting = (connect, "AIAAS_S3_CONNECT_TIMEOUT")
    if read < connect:
        wait, setting = read, "AIAAS_S3_READ_TIMEOUT"

    def probe(**_: Any) -> None:
        if not done.acquire(blocking=False):
            return  # probed (or being probed by another thread): the request goes as before
        what = silence(endpoint, wait)
        if what is not None:
            raise fail(what, setting)

    return probe
