"""`aiaas serve --cors-origins`: the stack's CORS (template.yaml's `CorsAllowOrigins`) locally.

A browser app on another origin (a dev server on localhost:5173 calling serve on :8080 is one)
reads an answer only if it carries `Access-Control-Allow-Origin`, and sends a call with an
`Authorization` or JSON body only after a preflight `OPTIONS` was answered so, with no
`Authorization` of its own. Serve had no CORS: the preflight was a 401 (token set) or a 404 (no
route for OPTIONS), and every answer, errors included, was hidden from the page as a "network
error" (hunt_journey10 1). As API Gateway with a CorsConfiguration does:
- a preflight from a listed origin is answered here, 204, before the token and every route;
- every answer to a listed origin, errors included (401, 403, 404, 413, 503), carries the
  origin, `Vary: Origin` and the headers a page may read;
- an origin not listed gets no CORS header (its browser refuses), its preflight a bare 204;
- every answer carries `Vary: Origin`, to no Origin and an origin not listed too (the Fetch
  standard's rule for an answer that depends on Origin): without it a browser's HTTP cache kept
  a GET answered with no CORS header (the URL opened in a tab, or fetched from a page not
  listed) and gave it to a listed page's fetch of the same URL, a network error there (rev16 1).
The lists are the template's (tests/infra/test_serve_cors.py keeps them equal).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from infra.local.open_guard import is_loopback_name
from infra.local.payload import GatewayResponse

ALLOW_METHODS = "GET,POST,PUT,DELETE"
ALLOW_HEADERS = (
    "authorization,content-type,content-encoding,inference-header-content-length,if-match,"
    "if-none-match,x-aiaas-routing-key,traceparent,x-request-id,x-amz-date,x-amz-security-token,x-amz-content-sha256"
)
EXPOSE_HEADERS = (
    "apigw-requestid,etag,inference-header-content-length,location,retry-after,"
    "x-aiaas-tokenizer,x-aiaas-version"
)
MAX_AGE_S = 600
# What a browser sends as Origin: a scheme and a host (and port), no path (the template's rule).
_ORIGIN = re.compile(r"https?://[^,/\s]+")


def cors_origins(text: str) -> tuple[str, ...]:
    """`--cors-origins`'s value: comma-separated origins, each as a browser sends it."""
    origins = tuple(part.strip() for part in text.split(",") if part.strip())
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(
                f"{origin!r} is not an origin: a browser sends scheme://host[:port], no path "
                "and no trailing slash (e.g. http://localhost:5173)"
            )
    if not origins:
        raise ValueError("no origin given (e.g. --cors-origins http://localhost:5173)")
    return origins


def refused_without_token(origins: Iterable[str]) -> str | None:
    """serve's start line for listed origins that a server with no token refuses (its open
    guard serves loopback pages only), else None: every call of such a page was a 403, and
    nothing at the start said so (rev16 5)."""
    foreign = [o for o in origins if not is_loopback_name(urlsplit(o).hostname or "")]
    if not foreign:
        return None
    return (
        f"  --cors-origins: pages on {', '.join(foreign)} are refused (403) while serve has no "
        "token, as a page must not move aliases: set AIAAS_API_TOKEN (docs/serve.md, Browser "
        "apps); pages on loopback origins are served"
    )


class Cors:
    """The CORS headers of one server's answers, for the origins it was given."""

    def __init__(self, origins: Iterable[str]) -> None:
        self.origins = frozenset(origin.lower() for origin in origins)

    def preflight(self, method: str, header: Callable[[str], str | None]) -> GatewayResponse | None:
        """The answer to a preflight (`OPTIONS` with Origin and Access-Control-Request-Method),
        else None: the request goes on as any other."""
        if method != "OPTIONS" or header("access-control-request-method") is None:
            return None
        origin = header("origin")
        if origin is None:
            return None
        if origin.lower() not in self.origins:
            return GatewayResponse(204, [("vary", "origin")], b"")
        return GatewayResponse(
            204,
            [
                ("access-control-allow-origin", origin),
                ("access-control-allow-methods", ALLOW_METHODS),
                ("access-control-allow-headers", ALLOW_HEADERS),
                ("access-control-max-age", str(MAX_AGE_S)),
                ("vary", "origin"),
            ],
            b"",
        )

    def add_headers(self, origin: str | None, headers: list[tuple[str, str]]) -> None:
        """Adds to an answer's `headers` what lets a page on a listed `origin` read it, and
        `Vary: Origin` whatever the origin: the answer depends on it."""
        if origin is not None and origin.lower() in self.origins:
            headers.append(("access-control-allow-origin", origin))
            headers.append(("access-control-expose-headers", EXPOSE_HEADERS))
        headers.append(("vary", "origin"))
