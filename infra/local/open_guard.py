"""What `aiaas serve` with no token refuses: requests a web page makes.

Served on loopback with no token (the default), the server trusted whoever could reach it: the
user's own processes. A web page the user visits can reach it too:
- a form posted across sites (any page, no CORS needed) rolled the production alias back
  (`POST /control/models/m/aliases/production/rollback`, answered 200);
- a page whose own domain resolves to 127.0.0.1 (DNS rebinding) reads every answer, and can
  move or delete aliases and versions: its requests are same-origin to the browser.

So, with no token:
- a request with an `Origin` that is not a loopback origin is refused (403): browsers send one
  on cross-site requests and on every POST; command-line clients, SDKs and tritonclient send
  none, and a page served from localhost sends its own, which is allowed;
- on loopback, a request whose `Host` names another host is refused (403): a rebinding page's
  requests carry its own domain there. Served on other interfaces (`--no-auth`), the Host is
  whatever name the network gives the machine, so it is not checked.
With a token none of this applies: a page cannot attach a token it does not know.

Behind a proxy (`--trusted-proxy`) nginx sends its upstream's name (or its own site's) as the
Host, and pages of the proxy's own site send its origin: a request that came through it (from
a trusted peer, with the `X-Forwarded-For` it adds) is the proxy's auth's to guard, and is
checked only for the one thing a rebinding page reaching the port directly cannot avoid, a
Host of another name with this server's port. Every other request is checked as above: the
guard was off for all of them, and a browser on the proxy's host reached the port directly
(a cross-site form rolled production back behind docs/serve.md's nginx).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _host_name(authority: str) -> str:
    """`host` of `host:port`, `[v6]:port` or `host`, lower-case."""
    text = authority.strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


def is_loopback_name(name: str) -> bool:
    """`localhost`, a name under `.localhost` (RFC 6761: never resolved by DNS) or a loopback
    address (127.0.0.0/8, ::1). Not any name that starts with `127.`: `127.attacker.example`
    is a domain a rebinding page can own, and passed as loopback in the Host and the Origin."""
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class OpenGuard:
    """The checks of a server with no token; `check_host`: it listens on loopback only."""

    def __init__(self, check_host: bool, port: int = 0) -> None:
        self.check_host = check_host
        self.port = port  # the server's own (0: not known)
        self._host = ""  # the last Host judged loopback: a client sends it on every request

    def refusal(self, headers: Sequence[tuple[str, str]], proxied: bool = False) -> str | None:
        """Why the request is refused (the 403's message), else None. ~0.2 us a request.
        `proxied`: it came through a trusted proxy (see the module's doc)."""
        if proxied:
            return self._rebound(headers)
        for name, value in headers:
            if name == "host":
                if value == self._host or not self.check_host:
                    continue
                if not is_loopback_name(_host_name(value)):
                    return _foreign_host(value)
                self._host = value
            elif name == "origin":  # "null" too: a sandboxed frame of any page sends it
                origin = urlsplit(value).hostname or ""
                if not is_loopback_name(origin):
                    return (
                        f"a request from a web page at {value} to a server with no token is "
                        "refused (a page could otherwise move aliases or read answers): serve "
                        f"with AIAAS_API_TOKEN set and --cors-origins {value} to call it from "
                        "that page (docs/serve.md, Browser apps)"
                    )
        return None

    def _rebound(self, headers: Sequence[tuple[str, str]]) -> str | None:
        """A proxied request's Host naming this server's port under another name: a page whose
        domain resolves here, which sent the proxy's header itself."""
        for name, value in headers:
            if name == "host" and self.port and self.check_host:
                port = value.strip().rpartition(":")[2]  # as a number: `:023854` is 23854
                numeric = port.isascii() and port.isdigit() and int(port) == self.port
                if numeric and not is_loopback_name(_host_name(value)):
                    return _foreign_host(value)
        return None


def _foreign_host(value: str) -> str:
    return (
        f"Host {value!r} is not this server's name: served on loopback with no token, it "
        "answers requests addressed to localhost or 127.0.0.1 only (a web page whose domain "
        "resolves here must not reach it)"
    )
