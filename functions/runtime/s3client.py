"""S3 clients: built with the settings' retries and timeouts, and shared within a process.

A botocore client is thread-safe (its session is not) and costs 0.1-0.25 s of CPU and ~12 MiB
to build: each `boto3.session.Session` parses S3's service model, endpoint rules and paginators
from JSON again. `aiaas serve` runs one predict function per model in one process, each with
its own store, so every store takes the one client already built for the same settings and the
same AWS environment (docs/benchmarks/serve.md, "Start-up on an S3 store"). In Lambda each function is its own process
with one store: one client, as before.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING

from functions.runtime.settings import RuntimeSettings, S3Settings, aws_client_environment

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_Key = tuple[S3Settings, tuple[tuple[str, str], ...]]
_lock = threading.Lock()
# Held only while a store holds it: a client of an environment no longer used is not kept.
_shared: weakref.WeakValueDictionary[_Key, S3Client] = weakref.WeakValueDictionary()


def _forked() -> None:
    """A forked child (granian's workers, the batch's processes) builds its own: the parent's
    client would share its pooled sockets with the parent and every sibling, and the lock may
    have been held by a thread that the child does not have."""
    global _lock, _shared
    _lock, _shared = threading.Lock(), weakref.WeakValueDictionary()


os.register_at_fork(after_in_child=_forked)


def make_s3_client(settings: S3Settings | None = None) -> S3Client:
    """A new S3 client with standard retries and bounded timeouts (`settings`, else the env's)."""
    import boto3
    from botocore.config import Config

    settings = settings or RuntimeSettings.from_env().s3
    config = Config(
        # total_max_attempts counts the first try; botocore's max_attempts counts only retries.
        retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        max_pool_connections=32,
    )
    client = boto3.session.Session().client("s3", config=config)
    from functions.runtime.s3answers import install

    install(client)  # an endpoint that is not S3, or never answers: said at once (s3answers.py)
    return client


def shared_s3_client(settings: S3Settings | None = None) -> S3Client:
    """The process's client for `settings` and the AWS environment as it is now: built by the
    first caller, the same object for every other (`forget_s3_client` drops it)."""
    settings = settings or RuntimeSettings.from_env().s3
    key = (settings, aws_client_environment())
    with _lock:  # one build, not one per function initialising at the same moment
        client = _shared.get(key)
        if client is None:
            client = make_s3_client(settings)
            _shared[key] = client
        return client


def forget_s3_client(client: object) -> None:
    """The next `shared_s3_client` call builds a fresh client instead of `client` (after a
    SnapStart restore: stale credentials and connections). `client` itself is not closed:
    requests in flight on it, in other functions of the process, finish on it."""
    with _lock:
        for key in [key for key, held in list(_shared.items()) if held is client]:
            del _shared[key]


# The first botocore (and boto3) whose S3 model has IfMatch on PutObject, DeleteObject and
# CompleteMultipartUpload (1.35.30-1.35.68 have IfNoneMatch only): pyproject.toml's floor.
MIN_BOTOCORE = "1.35.69"


def outdated_sdk() -> str:
    """What to say when botocore refused a conditional write's parameter as unknown: it predates
    S3's conditional writes (If-Match / If-None-Match on put, delete and multipart completion)."""
    import botocore

    return (
        f"this botocore ({botocore.__version__}) cannot send S3 conditional writes (If-Match / "
        f"If-None-Match), which aiaas needs to publish and move aliases safely: it needs boto3 "
        f"and botocore >= {MIN_BOTOCORE} (on Lambda, the runtime's SDK: see docs/deploy.md)"
    )
