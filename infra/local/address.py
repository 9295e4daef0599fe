"""Where `aiaas serve` listens, and the token that guards it, checked before any model loads.

granian binds each worker's socket with SO_REUSEPORT (that is how its workers share a port), so
a second server started on a port already served binds as well, without a word, and the kernel
splits connections between the two: a stale `aiaas serve` with another token, store or
selector answered about half the requests (measured: 17 of 40 unauthenticated requests got a
200 from a server meant to require a token). granian also takes only IP literals: `--host
localhost` was a traceback, an address this machine lacks a Rust panic of 60 frames.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from functions.runtime.errors import BadRequest

# What token_problem finds, in the words every refusal of a token uses.
UNSENDABLE = (
    "holds a character an HTTP header cannot carry (a control character, a tab or non-ASCII)"
)
SPACED = "holds a space, which a bearer token cannot (RFC 6750)"


def listen_address(host: str, port: int) -> str:
    """The IP address to bind for `--host host`; BadRequest saying what to change when
    host:port cannot be served (no such address, a port in use or privileged)."""
    if not 0 < port < 65536:
        raise BadRequest(f"--port {port} is not a TCP port: pick one from 1 to 65535")
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BadRequest(
            f"--host {host!r} is not a name or address of this machine ({exc}); use an IP "
            "address, e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"
        ) from None
    # IPv4 first: `localhost` resolves to ::1 before 127.0.0.1 on some systems, and callers
    # who typed it mostly mean the address curl and browsers try first, 127.0.0.1.
    family, _, _, _, address = min(found, key=lambda info: info[0] != socket.AF_INET)
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR (not SO_REUSEPORT): a restart's connections in TIME_WAIT are no
        # conflict, a socket listening on the port is.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise BadRequest(_bind_problem(host, port, exc)) from None
    return str(address[0])


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{host}:{port} is already in use (another aiaas serve, or another server): stop "
            "it, or pick another --port"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"--host {host}: this machine has no such address; use 127.0.0.1 (this machine "
            "only), 0.0.0.0 (every interface) or one of its own addresses"
        )
    if exc.errno == errno.EACCES:
        return f"--port {port}: ports below 1024 need privileges; pick 1024 or above"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def check_exposure(host: str, address: str, guarded: bool, no_auth: bool) -> None:
    """BadRequest when `address` reaches other machines and no token guards it (unless
    `--no-auth` says that is meant): open, anyone on the network could promote or roll back
    aliases, submit batch jobs over store keys, and read every model's metadata and metrics."""
    if guarded or no_auth or ipaddress.ip_address(address).is_loopback:
        return
    raise BadRequest(
        f"--host {host} serves other machines, and with no token anyone who reaches it may "
        "move aliases, submit batch jobs and read every model: set AIAAS_API_TOKEN to the "
        "token callers send (or AIAAS_API_TOKEN_FILE to a file of them), or pass --no-auth "
        "to serve it open on purpose"
    )


def checked_token(token: str | None, otherwise: str = "serve without auth") -> str | None:
    """The token to require (or, for a client, to send), None for none; BadRequest for one set
    but unusable: empty (`AIAAS_API_TOKEN=` served every route open), with spaces around it (a
    presented token is stripped, so no caller could match it), or one no caller can send (see
    token_problem). `otherwise` is what unsetting it does: serve open, or send no token."""
    if token is None:
        return None
    if not token or token != token.strip():
        raise BadRequest(
            "the API token is empty or has spaces around it; set AIAAS_API_TOKEN (or --token) "
            f"to the token callers send, or unset it to {otherwise}"
        )
    if (problem := token_problem(token)) is not None:  # what is wrong, never the token
        raise BadRequest(
            f"AIAAS_API_TOKEN (or --token) {problem}; set it to the token callers send, in "
            f"printable ASCII with no spaces, or unset it to {otherwise}"
        )
    return token


def token_problem(token: str) -> str | None:
    """Why no caller can send `token` as `Authorization: Bearer TOKEN`, None when one can: the
    one rule for the token file's lines, AIAAS_API_TOKEN and --token. Serve started with
    `tök` said "bearer token required" and answered every caller 401 (UTF-8 or Latin-1 bytes
    alike), with `tok\x01` granian's bare 400 with no body; `a b` is sent whole by curl, but
    RFC 6750 allows no space, and the file refused it ("NEW6 # primary" was one token there)."""
    if not (token.isascii() and token.isprintable()):
        return UNSENDABLE
    if " " in token:
        return SPACED
    return None
