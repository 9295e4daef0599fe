"""HTTP requests of aiaas's own clients that carry a credential, and the redirects they follow.

`python -m infra.call` (a bearer token or a SigV4 signature) and `aiaas rollout`'s `/metrics`
scrape (`aiaas serve`'s token) send `Authorization`. `urllib.request.urlopen` follows a 301,
302, 303 or 307 of a GET with every header the request was given, whatever host or scheme the
`Location` names: a redirect to another server (a proxy's http -> https on another name, a
moved host, or anyone able to answer at the URL given) received the token, which opens every
route of a serve, and the client printed that server's answer as the one it asked for (curl
`-L` and requests drop `Authorization` when the host changes). Here a redirect is followed
within its origin (scheme, host and port, so https -> http is another one), credential and
all; one to another origin, while the request carries `Authorization`, is refused, naming
where it pointed. A request with no credential follows redirects as urllib does.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from typing import IO, cast
from urllib.parse import urlsplit


class CredentialRedirect(urllib.error.URLError):
    """A redirect to another origin not followed, for it would carry the request's credential."""

    def __init__(self, url: str, target: str, code: int) -> None:
        self.url, self.target, self.code = url, target, code
        super().__init__(
            f"{url} answered {code}, a redirect to {target}, another origin: not followed, as "
            "the request's Authorization would go there too; give that URL instead if it is "
            "the server you mean"
        )

    def __str__(self) -> str:  # URLError's is '<urlopen error ...>'
        return str(self.reason)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:  # a port that is no number: no origin of ours
        port = -1
    return scheme, (parts.hostname or "").lower(), port


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if req.has_header("Authorization") and _origin(newurl) != _origin(req.full_url):
            raise CredentialRedirect(req.full_url, newurl, code)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameOriginRedirects)


def open_url(request: urllib.request.Request, timeout: float) -> http.client.HTTPResponse:
    """`urllib.request.urlopen(request, timeout=timeout)`, less a credential's cross-origin
    redirects: CredentialRedirect (an OSError, as urlopen's other failures) instead."""
    return cast(http.client.HTTPResponse, _OPENER.open(request, timeout=timeout))
