"""The bearer token a client of `aiaas serve` sends: AIAAS_API_TOKEN, or the first token of
AIAAS_API_TOKEN_FILE (each with its flag, --token or --token-file).

An operator who moved serve to a token file (and unset AIAAS_API_TOKEN, which serve refuses
beside it) had clients that read only the variable: `aiaas rollout --metrics` then scraped
with no token, a 401 at every check. Clients read the same file, parsed by serve's own reader
(token_file.read_tokens), and send its first token; serve accepts every line. So a rotation
is: add the new token on a later line (every server accepts it), move it to the first line
(clients send it), remove the old line. The file is re-read when a stat says it changed,
before each request, so a rollout that runs for an hour follows a rotation; a file broken
meanwhile keeps the token read last (logged once), as serve keeps the set it read last.
"""

from __future__ import annotations

import logging
from pathlib import Path

from functions.runtime.errors import BadRequest
from infra.local.address import checked_token
from infra.local.token_file import TOKEN_FILE_ENV, file_path, read_tokens, refuse_both, stat_key

log = logging.getLogger("aiaas.client")

SET_ONE = (
    f"set AIAAS_API_TOKEN or {TOKEN_FILE_ENV} (a file of tokens, one a line: its first is sent), "
    "or pass --token or --token-file"
)


class ClientToken:
    """The token to send, called before each request (None: send none)."""

    def __init__(self, token: str | None, path: Path | None = None) -> None:
        self.token = token or None  # `AIAAS_API_TOKEN=` sends none, as it always did
        self.path = path
        self._seen = stat_key(path) if path is not None else None  # stat before the read: a
        if path is not None:  # change in between is read again at the first call
            self.token = read_tokens(path)[0]

    @classmethod
    def from_settings(cls, token: str | None, token_file: str | None) -> ClientToken:
        """From --token / AIAAS_API_TOKEN or --token-file / AIAAS_API_TOKEN_FILE, refused as
        serve refuses them: both set, the file's path empty, the file unreadable or with no
        token, a token no HTTP header can carry (BadRequest saying what to fix, never the
        token), before any request is sent."""
        refuse_both(token, token_file)
        if token_file is None:  # one serve would refuse is refused here too (checked_token)
            return cls(checked_token(token, "send no token") if token else None)
        return cls(None, file_path(token_file, "send no token"))

    def __call__(self) -> str | None:
        if self.path is None:
            return self.token
        key = stat_key(self.path)
        if key != self._seen:
            self._seen = key  # a broken file is logged once, not at every request
            try:
                self.token = read_tokens(self.path)[0]
            except BadRequest as exc:
                log.warning("%s; still sending the token read before", exc.message)
        return self.token

    def source(self) -> str:
        """Where the token sent comes from, for an error (never the token itself)."""
        if self.path is not None:
            return f"the first token in {self.path}"
        return "AIAAS_API_TOKEN (or --token)"
