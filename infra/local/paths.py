"""How an API Gateway HTTP API decodes a request path, copied by the local gateway.

HTTP APIs percent-decode a path twice: once to match it to a route (so `%2F` separates
segments, and `/models/a%2Fb/predict` has no route), and again, after routing, for what the
function is given: `rawPath`, `requestContext.http.path` and each of `pathParameters`. So
`/v2/models/m/versions/%252e%252e` routes as `.../versions/%2e%2e` and the function reads the
version `..`; a path whose once-decoded form has a `%` that starts no escape (`/x/100%25`) is
refused with a 400. The sources: AWS's HTTP API routes guide ("API Gateway decodes URL-encoded
request parameters before passing them to your backend integration"); live captures of HTTP
API events (hotsock/voker, vokerhttp/testdata/ingress-paths.json: `literal%252Fvalue` arrives
as rawPath `literal/value`, `literal%2525value` as `literal%value`, `percent%25done` is a 400);
and the path parameter `a%252Fb` that reaches Lambda as `a/b` (Stack Overflow, "How to encode
parameters for AWS API Gateway HTTP API"). `sam local start-api` decodes once (its Flask
request's path and view_args, samcli/local/apigw/event_constructor.py): it differs from AWS.

granian hands the app the path decoded once, which the gateway routes on; `decode_again` is
the second decoding. The functions decode nothing more (functions/control/handler.py keeps
Mangum from decoding a third time), so what a name check sees is what the handler uses.
Not copied: HTTP APIs also cut a path at a `?` that the first decoding made (`%3F`).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

_NOT_AN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class UndecodablePath(ValueError):
    """The once-decoded path cannot be decoded again (API Gateway answers 400)."""


def decode_again(path: str) -> str:
    """`path` (or a segment of it), already decoded once, decoded as API Gateway does before
    handing it to the function; UndecodablePath saying what to send instead."""
    if "%" not in path:
        return path
    if _NOT_AN_ESCAPE.search(path) is not None:
        raise UndecodablePath(
            f"the request path decodes to {path!r}, where a '%' starts no %XX escape: "
            "API Gateway decodes paths twice, so send a literal '%' as %2525"
        )
    try:
        return unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise UndecodablePath(
            f"the request path decodes to {path!r}, whose escapes are not UTF-8 text"
        ) from None


def decode_params(params: dict[str, str]) -> dict[str, str]:
    """Path parameters (each a segment of the path as routed) as the function is given them."""
    return {name: decode_again(value) for name, value in params.items()}
