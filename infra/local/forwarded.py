"""The caller's address behind a reverse proxy the operator trusts (`aiaas serve --trusted-proxy`).

Behind nginx every request comes from the proxy's address, so the control plane recorded each
alias change as `bearer-token-holder@127.0.0.1`, whoever made it. A proxy appends the address
it saw to `X-Forwarded-For` (nginx: `$proxy_add_x_forwarded_for`); what is left of that is the
client's to write. So the address is taken only from a peer named trusted, and is the right-most
entry that is no trusted proxy (uvicorn's `--forwarded-allow-ips`, gunicorn's, the same rule): a
client that sends `X-Forwarded-For: 10.0.0.1` itself is recorded by the address nginx saw, and one
that reaches the server directly by its own. The address is what API Gateway gives as
`requestContext.http.sourceIp`, not an identity: no version is picked by it (docs/rollout.md).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

FORWARDED_FOR = "x-forwarded-for"


def proxy_addresses(text: str) -> tuple[str, ...]:
    """`--trusted-proxy`'s value: comma-separated IP addresses, each checked and normalised
    (`::ffff:127.0.0.1` is not `127.0.0.1` to a socket, so it is refused rather than guessed)."""
    addresses = []
    for part in text.split(","):
        try:
            addresses.append(str(ipaddress.ip_address(part.strip())))
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not an IP address") from None
    return tuple(addresses)


def caller_address(peer: str, headers: Iterable[tuple[str, str]], trusted: frozenset[str]) -> str:
    """The address the request came from: `peer`, or for a trusted proxy the last address
    before it in `X-Forwarded-For` that is no trusted proxy (all of them trusted: the first)."""
    if peer not in trusted:
        return peer
    hops = [
        hop.strip()
        for name, value in headers
        if name.lower() == FORWARDED_FOR
        for hop in value.split(",")
    ]
    address = peer
    for hop in reversed(hops):
        try:
            normal = str(ipaddress.ip_address(hop))
        except ValueError:  # no proxy wrote it: the client did, so nothing left of it counts
            return peer
        address = hop
        if normal not in trusted:
            return hop
    return address  # every hop a trusted proxy: the first of them


def forwarded(headers: Iterable[tuple[str, str]]) -> bool:
    """Whether the request carries an `X-Forwarded-For` (a proxy's, from a trusted peer)."""
    return any(name.lower() == FORWARDED_FOR for name, _ in headers)
