"""A routing key the local gateway's HTTP server cannot hand over: refused, not lost.

Granian (2.8, and its main branch: `src/rsgi/types.rs`, `HeaderValue::to_str`) gives an RSGI
app only header values of visible ASCII: a value with any other byte (`josé@example.com` sent
as UTF-8 by curl, latin-1 by requests) is left out of `items()` and `get()`, and only its name
stays in `keys()`. An `x-aiaas-routing-key` of that kind reached the predict function as no key
at all, so the caller was routed at random on every request, flipping between the versions of
a split alias (hunt_rollout 6). API Gateway hands the function such a value as text, so there
the key is sticky. Here the value cannot be read, so the request is refused with a 400 that
says to send the key in ASCII: one spelling that is sticky alike in both places.
"""

from __future__ import annotations

from typing import Protocol

from functions.predict.http import ROUTING_HEADER
from infra.local.payload import GatewayResponse, error

UNREADABLE_KEY = (
    f"the {ROUTING_HEADER} header holds characters other than ASCII, which aiaas serve's HTTP "
    "server cannot read (it drops such values), so the request could not be routed by it: "
    "send the key in ASCII, e.g. percent-encoded (jos%C3%A9@example.com for josé@example.com) "
    "or hashed. API Gateway passes such a key through to a deployed function."
)


class NamedHeaders(Protocol):
    """Granian's RSGI headers: every name sent, readable value or not."""

    def __contains__(self, name: str) -> bool: ...


def unreadable_routing_key(
    names: NamedHeaders, headers: list[tuple[str, str]]
) -> GatewayResponse | None:
    """A 400 when the request sent a routing key whose value the server dropped, else None
    (one look-up of a name a request: ~0.05 us)."""
    if ROUTING_HEADER not in names:
        return None
    if any(name == ROUTING_HEADER for name, _ in headers):  # read (at least its first value)
        return None
    return error(400, UNREADABLE_KEY)
