"""`python -m moto.server`, with S3's conditional object writes made atomic as on real S3
(and its request recorder's lines whole).

moto 5.x checks If-Match / If-None-Match: * in its request handler, then calls the backend to
write, with nothing held between the two; its server answers each request on its own thread,
so two racing conditional writes of one key can both pass the check and both "win" (seen about
once in a thousand racing pairs). Real S3 lets exactly one win. The code under test relies on
that (publish claims a version number, rollouts and aliases move by compare-and-swap), so
tests that race writers would flake on moto. One lock around every handler that checks a
condition and then writes closes the window; it also covers reads, which an overwrite could
close the buffer of (a 500). Those handlers work on bytes already read off the socket and
return bytes sent after: the lock is held for in-memory work only, never across network I/O.
moto also ignores If-Match on CompleteMultipartUpload, which S3 checks: checked here too.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import Any

from moto.s3.responses import S3Response

_WRITE = threading.RLock()

# put_object and copy_object check If-Match / If-None-Match; _key_response_post completes a
# multipart upload (If-None-Match); delete_object checks If-Match. get_object and head_object
# read a key's buffer, which an overwrite closes: unlocked, a read racing a write was a 500.
_CHECK_THEN_WRITE = ("put_object", "copy_object", "_key_response_post", "delete_object")
_READS = ("get_object", "head_object")


def _serialised(method: Callable[..., Any], lock: Any = _WRITE) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return locked


def make_conditional_writes_atomic() -> None:
    for name in (*_CHECK_THEN_WRITE, *_READS):
        setattr(S3Response, name, _serialised(getattr(S3Response, name)))
    completion = _completion_checks_if_match(S3Response._key_response_post)
    S3Response._key_response_post = completion  # type: ignore[method-assign]


def _completion_checks_if_match(method: Callable[..., Any]) -> Callable[..., Any]:
    """moto 5.x checks If-None-Match: * on CompleteMultipartUpload but ignores If-Match, which
    S3 checks there as on a PUT (412 PreconditionFailed; 404 NoSuchKey when no object is
    there): a conditional overwrite of a big object (a batch output, a version's card or
    vocabulary over 16 MiB) won against any object. Checked under the writers' lock, with
    moto's own idempotent re-completion of the same upload left as it is."""

    @functools.wraps(method)
    def checked(
        self: S3Response,
        request: Any,
        body: bytes,
        bucket_name: str,
        query: dict[str, Any],
        key_name: str,
    ) -> Any:
        from moto.s3.exceptions import MissingKey, PreconditionFailed

        expect = request.headers.get("If-Match")
        with _WRITE:
            if query.get("uploadId") and expect:
                existing = self.backend.get_object(bucket_name, key_name)
                same = existing is not None and existing.multipart is not None
                if not (same and existing.multipart.id == query["uploadId"][0]):
                    if existing is None:
                        raise MissingKey(key=key_name)
                    if expect.strip('"') != existing.etag.strip('"'):
                        raise PreconditionFailed("If-Match")
            return method(self, request, body, bucket_name, query, key_name)

    return checked


def make_recording_whole() -> None:
    """moto's recorder (MOTO_ENABLE_RECORDING) appends each request to one file from the
    thread answering it, a big body in several writes: two at once interleaved their lines
    (parts of a parallel upload). One at a time, each line is whole."""
    from moto.moto_api._internal.recorder.models import Recorder

    Recorder._record_request = _serialised(Recorder._record_request, threading.Lock())  # type: ignore[method-assign]


def serve(switch_interval: float | None = None) -> None:
    """moto.server's main (its arguments from sys.argv), conditional writes made atomic."""
    from moto.server import main

    if switch_interval:
        sys.setswitchinterval(switch_interval)
    make_conditional_writes_atomic()
    make_recording_whole()
    main()


if __name__ == "__main__":
    serve()
