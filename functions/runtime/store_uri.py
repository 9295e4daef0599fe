"""`open_store`: the store a URI names, a directory path or `s3://bucket/prefix`
(`AIAAS_STORE` when none is given). Importers take it from `store.py`, which re-exports it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.runtime.errors import AiaasError
from functions.runtime.settings import RuntimeSettings, S3Settings

if TYPE_CHECKING:
    from functions.runtime.store_api import ObjectStore


def open_store(uri: str | None = None, s3: S3Settings | None = None) -> ObjectStore:
    """The store named by `uri`, else (None) by the settings (`AIAAS_STORE`, else
    `.aiaas/store`). An empty `uri` is refused: it had meant the default store."""
    uri = RuntimeSettings.from_env().store if uri is None else uri
    if not uri.strip():
        raise AiaasError("the store URI is empty: give a directory or s3://bucket/prefix")
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise AiaasError(f"store URI {uri!r} names no bucket: use s3://bucket[/prefix]")
        from functions.runtime.s3store import S3Store

        return S3Store(bucket, prefix, settings=s3)
    if "://" in uri:
        raise AiaasError(
            f"unsupported store URI {uri!r}: use a directory path or s3://bucket/prefix"
        )
    if uri.lower().startswith("s3:"):  # `s3:/team`: else a local directory named `s3:`
        raise AiaasError(f"store URI {uri!r} is not s3://bucket[/prefix] (two slashes)")
    from functions.runtime.store import LocalStore  # (store.py re-exports this module)

    return LocalStore(uri)
