"""The bearer tokens `aiaas serve` accepts from a file (AIAAS_API_TOKEN_FILE), re-read when it changes.

A token read once at start could only be rotated by stopping the serve (callers refused
meanwhile) or by a second server behind a moved load balancer. A file is what a rotation
needs: it holds one token a line (blank lines and `#` comments skipped), every one accepted,
so the new token is added, callers move to it, and the old one is removed, all while serving.
Kubernetes updates a Secret mounted as a volume in place by swapping a symlinked directory
(`..data`) atomically, which a stat that follows the link sees as another inode.

Each worker watches the file on its own thread, a stat once per RECHECK_S, so a request pays
nothing for it: the gateway reads the tuple of tokens this thread swaps in whole. A file that
becomes unreadable or empty keeps the last good set (logged once), never an open server.
A worker started later (granian respawns one that crashed) has only the set read at the
serve's start: if the file has changed since and cannot be read now, that set may hold a token
the operator has since removed, so such a worker accepts none (401s, logged) until the file
reads again; its siblings keep their last good set.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from functions.runtime.errors import BadRequest
from infra.local.address import SPACED, checked_token, token_problem

log = logging.getLogger("aiaas.gateway")

TOKEN_FILE_ENV = "AIAAS_API_TOKEN_FILE"  # noqa: S105 - a variable name, not a secret
RECHECK_S = 1.0  # how long a removed token may still be accepted, at most (plus a read)
MAX_BYTES = 64 * 1024  # thousands of tokens; a larger file is a wrong path

_Key = tuple[int, int, int, int, int] | None  # what a stat says of the file (None: no file)


def read_tokens(path: Path) -> tuple[str, ...]:
    """The tokens in `path`, in order, without repeats; BadRequest saying what to fix when it
    cannot be read or holds none (an empty file would otherwise serve every route open)."""
    text = _text(path)
    tokens: dict[str, None] = {}
    # Lines end at "\n" only: str.splitlines also breaks at form feeds, separators and
    # Unicode line breaks, which cut a token holding one into two shorter ones, each accepted.
    for number, line in enumerate(text.split("\n"), start=1):
        token = line.strip(" \t\r")
        if not token or token.startswith("#"):
            continue
        if (problem := token_problem(token)) is not None:  # the line's number, never its token
            fix = (
                "a comment goes on a line of its own, starting with #"  # "NEW6 # primary"
                if problem == SPACED
                else "write each token in printable ASCII, as callers send it"
            )
            raise BadRequest(f"line {number} of the API token file {path} {problem}; {fix}")
        tokens[token] = None
    if not tokens:
        raise BadRequest(
            f"the API token file {path} holds no token (blank lines and # comments are "
            "skipped); write the token callers send on a line of its own"
        )
    return tuple(tokens)


def _text(path: Path) -> str:
    """The file's text, read only from a regular file of at most MAX_BYTES: a FIFO blocked the
    read for ever (the start, or a worker's watcher for good) and /dev/zero ate the memory."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once (ignored for files).
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                reason = "it is not a regular file"
            elif len(data := file.read(MAX_BYTES + 1)) > MAX_BYTES:
                reason = f"it is over {MAX_BYTES // 1024} KiB, no file of tokens"
            else:  # utf-8-sig: a BOM (Notepad's) is no part of the first token
                return data.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    raise BadRequest(
        f"cannot read the API token file {path} ({reason}); point {TOKEN_FILE_ENV} (or "
        "--token-file) at a readable file of tokens, one a line"
    )


def stat_key(path: Path) -> _Key:
    try:
        st = path.stat()  # follows the links: kubelet's swap of `..data` is a new inode
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class TokenFile:
    """Watches `path` and hands each new good set of tokens to `accept` (as bytes, compared
    as they are presented)."""

    def __init__(
        self,
        path: Path,
        tokens: tuple[str, ...],
        accept: Callable[[tuple[bytes, ...]], None],
        read_at: _Key = None,
    ) -> None:
        self.path = path
        self.tokens = tokens
        self._accept = accept
        self._read_at = read_at  # the file as `tokens` were read from it (stat before the read)
        self._seen: _Key = None  # the first check reads it (a worker: changed since the start?)
        self._first = True
        self._stop = threading.Event()  # never set: the thread is a daemon, ending with its worker

    def check(self) -> None:
        """Re-read the file if a stat says it changed since the last look."""
        key = stat_key(self.path)
        if key == self._seen and not self._first:  # a file missing at the first look is
            return  # None as `_seen` starts: a respawned worker then kept a revoked token
        self._seen = key  # a broken file is logged once, not once a second
        first, self._first = self._first, False
        try:
            tokens = read_tokens(self.path)
        except BadRequest as exc:
            if first and self.tokens and key != self._read_at:
                # The set read at the start is older than the file: one of its tokens may be
                # revoked. Nothing known to be current is accepted until the file reads.
                self.tokens = ()
                self._accept(())
                log.error(
                    "%s; it changed since the serve started, so this worker accepts no token "
                    "until it can read it again",
                    exc.message,
                )
                return
            log.warning("%s; still accepting the %s read before", exc.message, _count(self.tokens))
            return
        if tokens != self.tokens:
            self.tokens = tokens
            self._accept(encoded(tokens))
            log.info("the API token file %s changed: %s now accepted", self.path, _count(tokens))

    def start(self) -> None:
        threading.Thread(target=self._watch, name="aiaas-token-file", daemon=True).start()

    def _watch(self) -> None:
        while not self._stop.wait(RECHECK_S):
            try:
                self.check()
            except Exception:  # the watch must outlive any surprise: the last set stays
                log.exception("checking the API token file %s failed", self.path)


def encoded(tokens: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(token.encode() for token in tokens)


def _count(tokens: tuple[str, ...]) -> str:
    return "1 token" if len(tokens) == 1 else f"{len(tokens)} tokens"


def tokens_at_start(token: str | None, token_file: str | None) -> tuple[str, ...] | None:
    """The tokens to require from the start (None: no auth), from AIAAS_API_TOKEN or
    AIAAS_API_TOKEN_FILE; BadRequest for both set (which one would rule, and would the other
    still open the door?) or for a file set but unusable, as for a token set but empty."""
    refuse_both(token, token_file)
    if token_file is not None:
        return read_tokens(file_path(token_file, "serve without auth"))
    checked = checked_token(token)
    return None if checked is None else (checked,)


def refuse_both(token: str | None, token_file: str | None) -> None:
    """BadRequest when both AIAAS_API_TOKEN and AIAAS_API_TOKEN_FILE are set: serve and its
    clients (`aiaas rollout`) refuse alike, so an operator's one environment suits both."""
    if token is not None and token_file is not None:
        raise BadRequest(
            f"both AIAAS_API_TOKEN (or --token) and {TOKEN_FILE_ENV} (or --token-file) are "
            "set; set one: the file, to rotate tokens without a restart"
        )


def file_path(token_file: str, otherwise: str) -> Path:
    """The path AIAAS_API_TOKEN_FILE names; BadRequest for one set but empty."""
    if not token_file.strip():
        raise BadRequest(
            f"{TOKEN_FILE_ENV} (or --token-file) is set but empty; set it to the path of "
            f"a file of tokens, one a line, or unset it to {otherwise}"
        )
    return Path(token_file)
