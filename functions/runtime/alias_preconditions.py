"""Optimistic concurrency on alias records: a caller that read an alias (its ETag) moves it only
if nobody moved it since (`If-Match`), or creates it only if it does not exist yet
(`If-None-Match: *`).

The registry's own compare-and-swap already loses no move (a writer that raced re-reads and
applies its move on top), but two people promoting different versions from the same view
should not both "win": the second must learn that the alias moved under them. The ETag is the
hash of the stored record, so it is the same for both stores and changes with every move.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from functions.runtime.errors import NotFound, PreconditionFailed
from functions.runtime.store import ObjectChanged, ObjectStore


def record_bytes(record: dict[str, Any]) -> bytes:
    """An alias record as the registry stores it."""
    return json.dumps(record, indent=2).encode()


def record_etag(raw: bytes) -> str:
    """The (strong, quoted) ETag of a stored alias record."""
    return f'"{hashlib.sha256(raw).hexdigest()[:32]}"'


@dataclass
class Precondition:
    """What the caller expects of the alias record before its move: `if_match` (ETags as sent,
    or "*": it exists) and/or `if_none_match` ("*": it does not exist yet); and, once checked,
    whether the record the move replaced `existed` (a 201 or a 200 for the caller)."""

    if_match: str | None = None
    if_none_match: str | None = None
    existed: bool | None = None

    def check(self, name: str, alias: str, raw: bytes | None) -> None:
        """PreconditionFailed when the record as read (None: absent) is not the expected one.
        The registry checks every read of its compare-and-swap: the last one is what it moved."""
        self.existed = raw is not None
        what = f"alias {alias!r} of model {name!r}"
        if self.if_none_match is not None and raw is not None:
            raise PreconditionFailed(f"{what} already exists: {_moved(raw)}")
        if self.if_match is None:
            return
        if raw is None:
            raise PreconditionFailed(f"{what} does not exist")
        if self.if_match.strip() != "*" and record_etag(raw) not in header_etags(self.if_match):
            raise PreconditionFailed(
                f"{what} changed since you read it: {_moved(raw)}; "
                "read it again (GET its ETag) and retry"
            )


def header_etags(header: str) -> set[str]:
    """The ETags of an If-Match header ('"a", "b"'); a weak one never matches (RFC 9110)."""
    return {tag.strip() for tag in header.split(",") if not tag.strip().startswith("W/")}


def _moved(raw: bytes) -> str:
    try:
        record = json.loads(raw)
        return (
            f"it now points at version {str(record['version'])!r} "
            f"(moved by {record.get('updated_by', 'unknown')} at {record.get('updated_at', '?')})"
        )
    except (ValueError, TypeError, KeyError):
        return "its record is not readable"


def delete_alias_record(
    store: ObjectStore,
    name: str,
    alias: str,
    key: str,
    when: Precondition | None,
    keep: Callable[[bytes], None],
    missing: Callable[[], NotFound],
) -> None:
    """Delete the record at `key`, `keep` given it first (the deletion's audit record); with
    `when`, a conditional delete of the version read (its version taken before the read: a
    write after it fails the delete, as S3's If-Match does). `missing`: the 404 when there is
    no record (one deleted before says by whom)."""
    version = store.version(key)
    try:
        raw = store.get_bytes(key)
    except NotFound:
        raise missing() from None
    if when is None:
        keep(raw)
        return store.delete(key)
    when.check(name, alias, raw)
    keep(raw)
    try:
        store.delete(key, if_version=version)
    except ObjectChanged:
        raise PreconditionFailed(
            f"alias {alias!r} of model {name!r} changed as it was being deleted; read it "
            "again (GET its ETag) and retry"
        ) from None
