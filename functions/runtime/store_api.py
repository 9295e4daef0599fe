"""What every object store offers (the directory store in `store.py`, S3 in `s3store.py`),
and the types its calls take and give. Import them from `functions.runtime.store`, which
re-exports them beside `LocalStore` and `open_store`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from functions.runtime.abandoned import ABANDONED_AFTER_S
from functions.runtime.errors import AiaasError, Conflict

Stamp = tuple[int, ...]  # what `ObjectStore.stamp` returns: opaque, compared with ==
Moved = Callable[[int], None]  # told the bytes of a chunk or part sent or received


class ObjectChanged(Conflict):
    """A conditional write found the object other than the caller last read it."""


class ObjectExists(ObjectChanged):
    """A create-if-absent write found the key already taken."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    modified: float = 0.0  # when it was last written (seconds since the epoch); 0: not known


@dataclass(frozen=True)
class StoreLocation:
    """Where a store's keys live, as S3 event notifications name them."""

    bucket: str  # LOCAL_BUCKET for a directory store
    key_prefix: str  # "" or "prefix/": a store key is an event key less this
    notifies: bool  # the store itself fires object-created events (S3); else the caller must


LOCAL_BUCKET = "aiaas-local"  # the bucket name local S3 events carry for a directory store


class StagedUpload(Protocol):
    """A file's bytes sent to the store, hashed as they were read, not yet visible under its
    key: publishing checks every file of a version before any becomes visible, reading each
    file once (`ObjectStore.stage_file`)."""

    sha256: str  # of exactly the bytes sent
    size: int
    # Whether `commit` made the object visible: True too when it then raised the stop (Ctrl-C)
    # that landed while the store wrote it, so the caller's cleanup knows to remove it.
    written: bool

    def commit(self) -> None:
        """Make the object visible under its key. Staged `if_absent` and the key is taken:
        ObjectExists, and the staged bytes are discarded. A stop (KeyboardInterrupt) landing
        meanwhile is raised once the store has answered, `written` set."""
        ...

    def abort(self) -> None:
        """Discard the staged bytes (nothing, once committed)."""
        ...


class StagedObject(Protocol):
    """An object's bytes, written to `file`, not yet visible under its key."""

    file: IO[bytes]

    def publish(self, expect: str | None) -> str:
        """Make the bytes written so far the object, if the key's `version` is still `expect`
        (None: no object), and return its new version; else ObjectChanged. May be called again
        (the same bytes are published again) until the context exits."""
        ...


class ObjectStore(Protocol):
    """What the registry, the runtime and batch jobs need from storage."""

    uri: str
    location: StoreLocation
    # Whether its uploads send each multipart part's CRC32, which the read of a model for its
    # signature can take beforehand (file_digests.py): S3 does; a directory store does not.
    takes_part_checksums: bool
    # The most bytes (UTF-8) the store promises to write a key with in each '/'-separated part:
    # a directory store's file names hold the file system's NAME_MAX (255) less what its temp
    # files add to an object's name (a longer one failed as "File name too long"); None: no
    # bound of its own (S3: only the key's 1,024 bytes).
    name_bytes: int | None

    def get_bytes(self, key: str) -> bytes: ...

    def put_bytes(
        self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None
    ) -> None:
        """Write `key` whole; `if_absent`: only if it does not exist; `if_match`: only if its
        etag (from `read_versioned`) is still this one. Else ObjectExists / ObjectChanged."""
        ...

    def read_versioned(self, key: str) -> tuple[bytes, str]:
        """The object's bytes and the etag a conditional `put_bytes` compares against."""
        ...

    def download_file(self, key: str, dest: Path, progress: Moved | None = None) -> None:
        """Copy the object to `dest`; `progress` hears the bytes of each chunk received."""
        ...

    def upload_file(self, src: Path, key: str, *, if_absent: bool = False) -> None: ...

    def stage_file(
        self, src: Path, key: str, *, if_absent: bool = False, progress: Moved | None = None
    ) -> StagedUpload:
        """Send `src` for `key`, hashing it as it is read; visible only once committed.
        `progress` hears the bytes of each chunk or part once sent (from any thread)."""
        ...

    def open_read(
        self, key: str, start: int = 0, end: int | None = None
    ) -> contextlib.AbstractContextManager[IO[bytes]]:
        """A stream of the object from byte `start` (a ranged read) to `end` (exclusive), else
        to its end."""
        ...

    def copy(self, source: str, dest: str, *, keep_etag: bool = False) -> None:
        """Copy an object within the store (server-side where the store can). `keep_etag`: the
        copy has its source's etag on a directory store too (S3's copy keeps it anyway), for a
        batch re-run's put-back only: a job copied from uploads/ is a new input, scored again
        even when an earlier file had the same size and mtime."""
        ...

    def open_write(self, key: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...

    def open_staged(self, key: str) -> contextlib.AbstractContextManager[StagedObject]:
        """An object written in full before it is published, by `StagedObject.publish`, only
        while `key` is the version the caller expects (discarded unless published)."""
        ...

    def version(self, key: str) -> str | None:
        """What a conditional publish or delete compares: changes with every write of `key`
        (S3: the ETag); None when there is no object."""
        ...

    def head(self, key: str) -> ObjectInfo: ...

    def exists(self, key: str) -> bool: ...

    def list_keys(self, prefix: str, after: str = "") -> Iterator[str]:
        """The keys below `prefix`, sorted as text (S3's order), those after the key `after`
        only where given: S3 lists from there, one request a 1,000, not from the start."""
        ...

    def list_files(self, folder: str, starting: str = "") -> list[str]:
        """The keys directly in `folder` (none of its subfolders') whose names begin with
        `starting`, sorted: one request a 1,000 on S3 however much else the folder holds."""
        ...

    def list_dirs(self, prefix: str) -> list[str]: ...

    def answers(self, prefix: str) -> None:
        """Return once the store answers a listing of `prefix`'s folders (StoreError when it
        cannot): readiness, one request on S3 however many folders there are."""
        ...

    def delete(self, key: str, *, if_version: str | None = None) -> None:
        """Delete `key`; with `if_version`, only while it is that version (else ObjectChanged)."""
        ...

    def delete_many(self, keys: Sequence[str]) -> None:
        """Delete every one of `keys` (a missing one is no error): S3's DeleteObjects, 1,000 a
        request; StoreError naming one that could not be deleted."""
        ...

    def remove_abandoned(
        self, prefix: str, *, settled_s: float = ABANDONED_AFTER_S, empty_folders: bool = False
    ) -> int:
        """Delete what writers killed midway left under `prefix` and no listing shows (a
        directory store's temp files) unmodified for `settled_s`; how many. 0 only where the
        caller has seen every writer under `prefix` end (it waited for them). S3 keeps nothing
        of the kind: an interrupted multipart upload is aborted by the bucket's lifecycle rule
        (template.yaml). `empty_folders`: a directory store's folders under `prefix` that hold
        nothing go too (S3 has none): a version's, which `list_dirs` shows and so took a number
        (a publish killed outright, or stopped before this release removed it)."""
        ...

    def stamp(self, key: str) -> Stamp | None:
        """A token (compare with ==) that changes whenever `key` (an object, or a folder of a
        directory store) is written, replaced or removed; None when the store has no check
        cheaper than a read."""
        ...


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise AiaasError(f"invalid storage key {key!r}")
    return key


def holds(store: ObjectStore, key: str, data: bytes) -> bool:
    """Whether `key` holds `data` exactly: a conditional write that met an object of that name
    met its own (a retry of a write whose answer was lost), not another writer's."""
    try:
        return store.get_bytes(key) == data
    except AiaasError:
        return False
