"""Object stores: a local directory (the embedded default); the interface every store offers
is in `store_api.py`, the choice of a store by its URI (`open_store`) in `store_uri.py` (both
re-exported here), S3 (any S3-compatible server) in `s3store.py`.

Keys are '/'-separated relative paths such as `models/iris/versions/3/model.onnx`. Writes are
atomic in both: a reader sees the old object, the new one, or none, never half of one.
`AIAAS_STORE` picks the store: a directory path, or `s3://bucket/prefix`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from stat import S_ISREG
from typing import IO, cast

from functions.runtime.abandoned import ABANDONED_AFTER_S
from functions.runtime.errors import NotFound, StoreError
from functions.runtime.generation import Generation
from functions.runtime.stamps import KeptStamps
from functions.runtime.store_api import (
    LOCAL_BUCKET,
    Moved,
    ObjectChanged,
    ObjectExists,
    ObjectInfo,
    ObjectStore,
    StagedObject,
    StagedUpload,
    Stamp,
    StoreLocation,
    check_key,
    holds,
)
from functions.runtime.store_links import check_inside, key_folder
from functions.runtime.store_parts import (
    LINK_HEX_BYTES,
    NAME_EXTRA,
    Limited,
    LocalStaged,
    StagedFile,
    StreamedFile,
    content_etag,
    copy_file,
    copy_object,
    file_mode,
    files_in,
    holding_lock,
    lock_file,
    longest_name,
    mkstemp_in,
    os_errors,
    remove_abandoned_temp,
    writing_local,
)
from functions.runtime.store_uri import open_store  # re-exported: see __all__
from functions.runtime.store_walk import walk_files

# The interface is re-exported: importers take every store name from this module.
__all__ = [
    "LOCAL_BUCKET",
    "LocalStore",
    "Moved",
    "ObjectChanged",
    "ObjectExists",
    "ObjectInfo",
    "ObjectStore",
    "StagedObject",
    "StagedUpload",
    "Stamp",
    "StoreLocation",
    "check_key",
    "holds",
    "open_store",
]

CHUNK, MULTIPART_THRESHOLD = 1024 * 1024, 16 * 1024 * 1024


class LocalStore:
    """A directory on disk. Atomic writes via a temp file in the same directory + rename."""

    takes_part_checksums = False

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)
        # A file as the store, or on its way (`file/sub`): listings under it were empty, "no
        # models", exit 0, and `versions` said "model not found" (CLI hunt).
        blocking = next((p for p in (self.root, *self.root.parents) if p.is_file()), None)
        if blocking is not None:
            where = "" if blocking == self.root else f" ({blocking} is a file)"
            raise StoreError(
                f"the store {self.uri} is a file, not a directory{where}: give --store (or "
                "AIAAS_STORE) the store's directory, or s3://bucket/prefix"
            )
        # Bumped after every write and delete; a stamp is kept while it is unchanged.
        self._generation = Generation(self.uri, file_mode())
        self._stamps = KeptStamps(self.uri, self._generation)
        self.location = StoreLocation(LOCAL_BUCKET, "", notifies=False)
        self.name_bytes: int | None = longest_name(self.root) - NAME_EXTRA  # temp names add it

    def _path(self, key: str) -> Path:
        check_inside(self.uri, key_folder(check_key(key)), key)  # no folder link out of it
        return self.root / key

    def _folder(self, prefix: str) -> Path:
        check_inside(self.uri, prefix, prefix)
        return self.root / prefix if prefix else self.root

    def _missing(self, key: str) -> NotFound:
        return NotFound(
            f"no object {key!r} in store {self.uri}", public_message=f"no object {key!r}"
        )

    def _errors(self, key: str) -> contextlib.AbstractContextManager[None]:
        return os_errors(self.root, key, lambda: self._missing(key))

    def _open(self, key: str) -> IO[bytes]:
        """The object's file, read; never through a symbolic link (a store holds its objects as
        files: a link planted in a store someone hands over made `aiaas pull` publish, and the
        card route serve, whatever file it named)."""
        with self._errors(key):
            fd = os.open(self._path(key), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        return os.fdopen(fd, "rb")

    def get_bytes(self, key: str) -> bytes:
        with self._open(key) as handle, self._errors(key):
            return handle.read()

    def put_bytes(
        self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None
    ) -> None:
        if if_match is None:
            with self._atomic(key, if_absent=if_absent) as tmp:
                tmp.write(data)
            return
        # Compare and swap: writers of this key take turns on its lock file (readers need no
        # lock: the replace is atomic); the etag is the content's hash, as mtimes are too coarse.
        with self._errors(key), self._locked(key):
            try:
                current = content_etag(self._path(key).read_bytes())
            except FileNotFoundError:
                current = None
            if current != if_match:
                raise ObjectChanged(f"object {key!r} changed since it was read")
            with self._atomic(key, if_absent=False) as tmp:
                tmp.write(data)

    def read_versioned(self, key: str) -> tuple[bytes, str]:
        data = self.get_bytes(key)
        return data, content_etag(data)

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        path = self._path(key)
        try:
            with holding_lock(path):  # which removes the lock of a key not there after
                yield
        finally:
            if not os.path.lexists(path):
                self._prune(path.parent)  # the folders a refused write made, or a delete left

    def download_file(self, key: str, dest: Path, progress: Moved | None = None) -> None:
        source = self._open(key)
        with source, writing_local(dest), Path(dest).open("wb") as out:
            while chunk := source.read(CHUNK):
                out.write(chunk)
                if progress is not None:
                    progress(len(chunk))

    def upload_file(self, src: Path, key: str, *, if_absent: bool = False) -> None:
        # The source opened first: its OSError (the caller's file, unreadable) is not the
        # store's, which `_atomic` maps to "cannot use KEY under ROOT".
        with Path(src).open("rb") as source, self._atomic(key, if_absent=if_absent) as tmp:
            shutil.copyfileobj(source, tmp, CHUNK)

    @contextlib.contextmanager
    def open_read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[IO[bytes]]:
        handle = self._open(key)
        with handle:
            if start:
                handle.seek(start)
            yield handle if end is None else cast(IO[bytes], Limited(handle, end - start))

    def copy(self, source: str, dest: str, *, keep_etag: bool = False) -> None:
        with self.open_read(source) as reader, self._atomic(dest, if_absent=False) as writer:
            copy_object(reader, writer, keep_etag)  # keep_etag: as S3's CopyObject keeps it

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[IO[bytes]]:
        with self._atomic(key, if_absent=False) as tmp:
            yield tmp

    @contextlib.contextmanager
    def open_staged(self, key: str) -> Iterator[StagedObject]:
        fd, tmp = self._temp(key)
        try:
            with self._errors(key), StreamedFile(io.FileIO(fd, "wb")) as handle:
                yield LocalStaged(handle, functools.partial(self._publish, tmp, key))
        finally:
            self._drop_temp(tmp, key)

    def _publish(self, tmp: Path, key: str, expect: str | None) -> str:
        """Rename a second link of `tmp` over `key` (`tmp` stays, to publish again) if `key` is
        still version `expect`: writers that compare take turns on the key's lock."""
        with self._errors(key), self._locked(key):
            if self.version(key) != expect:
                raise ObjectChanged(f"object {key!r} changed since it was read")
            link = tmp.with_name(f"{tmp.name}.{secrets.token_hex(LINK_HEX_BYTES)}")
            os.link(tmp, link)
            try:
                link.replace(self._path(key))
            finally:
                link.unlink(missing_ok=True)
                self._generation.bump()
            return self.version(key) or ""  # ours: the lock holds other publishers off

    def version(self, key: str) -> str | None:
        try:
            with self._errors(key):
                stat = self._path(key).stat()
        except NotFound:
            return None
        # Every write renames a new file into place: a new inode, however coarse the mtime.
        return f"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}"

    @contextlib.contextmanager
    def _atomic(self, key: str, *, if_absent: bool) -> Iterator[IO[bytes]]:
        fd, tmp = self._temp(key)
        try:
            with self._errors(key), StreamedFile(io.FileIO(fd, "wb")) as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            self._commit(tmp, key, if_absent=if_absent)
        finally:
            self._drop_temp(tmp, key)

    def _drop_temp(self, tmp: Path, key: str) -> None:
        """Nothing half-written stays behind, nor the folders made for a key never written."""
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if not os.path.lexists(self._path(key)):
            self._prune(tmp.parent)

    def _temp(self, key: str) -> tuple[int, Path]:
        """A new temp file beside `key`'s final place (same disk: the commit is a rename)."""
        final = self._path(key)
        with self._errors(key):
            fd, tmp_name = mkstemp_in(final.parent, final.name)
            # mkstemp makes 0600 files; a published file gets the umask's mode, as `cp` leaves one.
            os.fchmod(fd, file_mode())
        return fd, Path(tmp_name)

    def _commit(self, tmp: Path, key: str, *, if_absent: bool) -> None:
        try:
            with self._errors(key):
                if if_absent:
                    # link() fails when the name exists: an atomic create-if-absent.
                    try:
                        os.link(tmp, self._path(key))
                    except FileExistsError:
                        raise ObjectExists(f"object {key!r} already exists") from None
                else:
                    tmp.replace(self._path(key))
        finally:
            self._generation.bump()  # after the rename: a stamp read from now on is new

    def stage_file(
        self, src: Path, key: str, *, if_absent: bool = False, progress: Moved | None = None
    ) -> StagedUpload:
        from functions.runtime import file_digests  # publishing only: not on serving's start

        known = file_digests.known_sha256(Path(src))  # hashed for its signature: not again
        digest, size = hashlib.sha256(), 0
        with Path(src).open("rb") as source:
            fd, tmp = self._temp(key)
            try:  # a stop (Ctrl-C) landing before the StagedFile exists removes the file too
                commit = functools.partial(self._commit, tmp, key, if_absent=if_absent)
                drop = functools.partial(self._drop_temp, tmp, key)
                staged = StagedFile(commit, drop, os.dup(fd), self._path(key))  # held till done
            except BaseException:
                os.close(fd)
                self._drop_temp(tmp, key)
                raise
            try:
                with self._errors(key), StreamedFile(io.FileIO(fd, "wb")) as handle:
                    if known is not None:
                        size = copy_file(source.fileno(), handle.fileno(), progress)
                    while known is None and (chunk := source.read(CHUNK)):
                        digest.update(chunk)
                        handle.write(chunk)
                        size += len(chunk)
                        if progress is not None:
                            progress(len(chunk))
                    handle.flush()
                    os.fsync(handle.fileno())
                if known is not None and file_digests.known_sha256(Path(src)) != known:
                    raise StoreError(f"{src} changed while it was being published; publish again")
                staged.sha256, staged.size = known or digest.hexdigest(), size
            except BaseException:
                staged.abort()
                raise
        return staged

    def head(self, key: str) -> ObjectInfo:
        with self._errors(key):
            stat = self._path(key).lstat()  # a link is no object (see _open)
        if not S_ISREG(stat.st_mode):  # a folder of keys under it is no object (a job 'pending')
            raise self._missing(key)
        etag = f"{stat.st_mtime_ns:x}-{stat.st_size:x}"
        return ObjectInfo(key, stat.st_size, etag, stat.st_mtime)  # mtime: when last written

    def exists(self, key: str) -> bool:
        path = self._path(key)
        return path.is_file() and not path.is_symlink()

    def list_keys(self, prefix: str, after: str = "") -> Iterator[str]:
        base = self._folder(prefix)
        if not base.is_dir():
            return
        with self._errors(prefix or "."):  # a folder a prune removes meanwhile is skipped
            files = [f for f in walk_files(base) if f.name[:5] != ".tmp-"]
        keys = (f.relative_to(self.root).as_posix() for f in files)
        yield from sorted(key for key in keys if key > after)  # S3's order: by text, not parts

    def list_files(self, folder: str, starting: str = "") -> list[str]:
        with self._errors(folder):
            return files_in(self._folder(folder), folder, starting)

    def list_dirs(self, prefix: str) -> list[str]:
        base = self._folder(prefix)
        if not base.is_dir():
            return []
        with self._errors(prefix):
            return sorted(p.name for p in base.iterdir() if p.is_dir())

    def answers(self, prefix: str) -> None:
        self.list_dirs(prefix)  # a directory's listing: as cheap as any check of it

    def delete(self, key: str, *, if_version: str | None = None) -> None:
        path = self._path(key)
        # A key with a lock file is deleted holding it, and the lock goes too (holding_lock):
        # else it kept a pruned version's folders.
        locked = if_version is not None or os.path.lexists(lock_file(path))
        try:
            with self._errors(key), self._locked(key) if locked else contextlib.nullcontext():
                if if_version is not None and self.version(key) != if_version:
                    raise ObjectChanged(f"object {key!r} changed since it was read")
                path.unlink(missing_ok=True)  # (the lock goes with it: holding_lock)
        finally:
            self._generation.bump()
        self._prune(path.parent)

    def delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.delete(key)

    def remove_abandoned(
        self, prefix: str, *, settled_s: float = ABANDONED_AFTER_S, empty_folders: bool = False
    ) -> int:
        folder = self._folder(check_key(prefix))
        return remove_abandoned_temp(folder, settled_s, self._prune, empty_folders=empty_folders)

    def _prune(self, folder: Path) -> None:
        """Remove the folders a delete left empty, up to the root, as S3 has no empty folders: a
        swept run's work folder (`batch/<model>/work/<run id>/`) went, not only its parts. A
        writer that loses its new folder to this makes it again (`_temp`)."""
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:  # not empty (another key's lock file counts), or gone already
                return
            folder = folder.parent

    def stamp(self, key: str) -> Stamp | None:
        # Every write renames a new file into place, created while the old one still exists,
        # so the inode changes as well as the mtime: a write within the same clock tick still
        # reads as a change. Read through a held descriptor where that is exact (stamps.py).
        return self._stamps.stamp(key)
