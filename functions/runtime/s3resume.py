"""An S3 object's body read to its end, resumed where the connection broke mid-read.

botocore retries neither a GET whose body is cut while the caller reads it (boto3#4111) nor
one that stalls past the read timeout (s3failures.py). A batch run reads its input as one
stream of many MB: a single reset anywhere in it failed the whole run, after every row before
the cut was scored. Here the body picks up where it broke: a ranged GET of the bytes not yet
handed out, only while the object is still the one first read (If-Match its ETag, so bytes of
a replaced object are never spliced in), after a short jittered backoff, as many times in a
row as the client's tries (AIAAS_S3_MAX_ATTEMPTS); a resume that brings bytes starts the
count again. The last cut is raised as it came (the store says it as a StoreError).
"""

from __future__ import annotations

import contextlib
import io
import random
import socket
import time
from collections.abc import Callable
from typing import Any

from functions.runtime.errors import StoreError
from functions.runtime.s3failures import BACKOFF_S, MAX_BACKOFF_S, broken
from functions.runtime.store import ObjectExists

BLOCK = 1024 * 1024  # what a read of the whole rest reads at a time


class ResumedBody(io.RawIOBase):
    """`body` (bytes [at, end) of the object at `where`) read through cuts: `reopen(position)`
    answers the GET of the bytes from `position` to `end`, If-Match the object first read."""

    def __init__(
        self, body: Any, reopen: Callable[[int], Any], *, at: int, end: int, tries: int, where: str
    ) -> None:
        super().__init__()
        self.body, self.reopen, self.where = body, reopen, where
        self.position, self.end, self.tries = at, end, tries
        self.cuts = 0  # in a row, with no byte between them
        self.aborted = False  # by `abort`: a cut then is not resumed

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        while True:
            if size == 0:
                return b""
            try:  # read to its end, b"": botocore checks its length and checksum only then
                data: bytes = self.body.read(size)
            except Exception as exc:
                stop = self.aborted or self.cuts >= self.tries - 1 or self.position >= self.end
                if stop or not broken(exc):
                    raise
                self._resume()
                continue
            if data:
                self.cuts = 0
            self.position += len(data)
            return data

    def readall(self) -> bytes:
        # In blocks: a cut keeps the blocks before it (one read of it all would lose them).
        blocks = []
        while block := self.read(BLOCK):
            blocks.append(block)
        return b"".join(blocks)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def abort(self) -> None:
        """From another thread: end the read in progress (its connection shut down), and
        resume none (download_deadline.py: a trickle past the download's deadline)."""
        self.aborted = True
        raw = getattr(self.body, "_raw_stream", self.body)  # botocore's body: urllib3's answer
        try:
            raw.shutdown()  # urllib3 >= 2.3: the socket's reading end, a blocked read wakes
        except Exception:  # an older urllib3, or a body already read or closed
            with contextlib.suppress(Exception):
                raw._fp.fp.raw._sock.shutdown(socket.SHUT_RD)  # http.client's socket

    def _resume(self) -> None:
        if self.aborted:
            raise StoreError(f"{self.where}: the read was stopped at byte {self.position}")
        self.cuts += 1
        self._close_body()
        pause = min(MAX_BACKOFF_S, BACKOFF_S * 2**self.cuts)
        time.sleep(random.uniform(0, pause))  # noqa: S311 (a jitter, not a secret)
        try:
            self.body = self.reopen(self.position)["Body"]
        except ObjectExists as exc:  # If-Match failed (412): not the object first read
            raise StoreError(
                f"{self.where} was replaced while it was being read (cut at byte "
                f"{self.position}, not resumed): read it again"
            ) from exc
        if self.aborted:  # while it backed off or asked: this body too
            self.abort()

    def _close_body(self) -> None:
        with contextlib.suppress(Exception):  # a broken connection's close: nothing to say
            self.body.close()

    def close(self) -> None:
        if not self.closed:
            self._close_body()
        super().close()
