"""`open_store`: the store a URI names, a directory path or `s3://bucket/prefix`
(`AIAAS_STORE` when none is given). Importers take it from `store.py`, which re-exports it.

A bucket's other names, as the console and the docs give them (`arn:aws:s3:::bucket/prefix`,
`https://bucket.s3.region.amazonaws.com/prefix`, the console's address), are refused naming the `s3://` URI they mean:
an ARN had been taken for a directory path, so `aiaas publish` wrote `./arn:aws:s3:::bucket/...`
and exited 0 (hunt_s3ux 3). So is an s3:// URI with a space at either end (`AIAAS_STORE="s3://b/p
"`): its prefix `p ` was another store, published into with exit 0 (hunt_s3ux 4).
"""

from __future__ import annotations

import re
import urllib.parse
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
    meant = meant_s3(uri)
    if meant is not None:
        what, s3_uri = meant
        raise AiaasError(f"store URI {uri!r} {what}: use {s3_uri}")
    if uri[:5].lower() == "s3://":  # a scheme is case-insensitive: S3://bucket is s3://bucket
        uri = "s3://" + uri[5:]
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
    if uri.lower().startswith("s3//"):  # the colon lost: else a local directory `s3`, made
        raise AiaasError(  # by publish (exit 0) where the bucket was meant (hunt_s3ux)
            f"store URI {uri!r} is not s3://bucket[/prefix] (the colon is missing); a "
            f"directory named s3 is ./{uri}"
        )
    from functions.runtime.store import LocalStore  # (store.py re-exports this module)

    return LocalStore(uri)


_ARN = re.compile(r"arn:aws[a-z-]*:s3:::(?P<bucket>[^/]+)/?(?P<prefix>.*)", re.IGNORECASE)
_HTTPS = re.compile(  # virtual-hosted (bucket.s3.region...) and path-style (s3.region.../bucket)
    r"https?://(?:(?P<host_bucket>[^/]+?)\.)?s3(?:[.-][a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?"
    r"/?(?P<path>[^?#]*)",
    re.IGNORECASE,
)
_CONSOLE = re.compile(
    r"https://(?:[a-z0-9-]+\.)*console\.aws\.amazon\.com/s3/(?:buckets|object)/"
    r"(?P<bucket>[^/?#]+)/?(?P<key>[^?#]*)(?:[?#].*)?",
    re.IGNORECASE,
)


def meant_s3(uri: str) -> tuple[str, str] | None:
    """(what is wrong with `uri`, the s3:// URI it means) for a bucket named another way."""
    stripped = uri.strip()
    if stripped != uri and stripped[:5].lower() == "s3://":
        return "has a space at an end (a prefix of its own)", stripped
    if found := _ARN.fullmatch(uri):
        return "is an S3 ARN", _s3(found["bucket"], found["prefix"])
    if found := _CONSOLE.fullmatch(uri):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)
        prefix = found["key"] or (query.get("prefix") or [""])[0]
        return "is the S3 console's address", _s3(found["bucket"], prefix)
    if found := _HTTPS.fullmatch(uri):
        if found["host_bucket"]:
            return "is an S3 https URL", _s3(found["host_bucket"], found["path"])
        bucket, _, prefix = found["path"].partition("/")
        return ("is an S3 https URL", _s3(bucket, prefix)) if bucket else None
    return None


def _s3(bucket: str, prefix: str) -> str:
    return f"s3://{bucket}/{urllib.parse.unquote(prefix).strip('/')}".rstrip("/")
