"""Pieces of the directory store: a ranged read of a file, a staged upload (a temp file
beside its key, renamed into place on commit), the file an object is streamed into, the
errors of writing a download's local file, and the sweep of temp files a killed writer left."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from functions.runtime.abandoned import ABANDONED_AFTER_S, hold_fd, remove_abandoned
from functions.runtime.errors import KeyClash, NotFound, StoreError, StoreFull, StoreReadOnly
from functions.runtime.names import TEMP_PREFIX
from functions.runtime.store_walk import walk_files

T = TypeVar("T")

WRITEBACK_BYTES = 32 * 1024 * 1024  # a local object's written part goes to disk this often
COPY_BYTES = 64 * 1024 * 1024  # the most one kernel copy call moves (progress hears each)
READ_BYTES = 1024 * 1024  # a copy read and written here, where the kernel cannot copy
# copy_file_range cannot join these files here (another filesystem type, an old kernel, a
# filesystem without it): the copy goes on through this process.
_NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP})
LOCK_PREFIX = ".tmp-lock-"
KEPT_TEMP = (LOCK_PREFIX, ".tmp-generation")  # the store's own lock and stamp files


class Limited(io.RawIOBase):
    """The next `left` bytes of a file, as a ranged GET of an object gives them."""

    def __init__(self, handle: IO[bytes], left: int) -> None:
        self.handle, self.left = handle, max(left, 0)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)[: self.left]
        count = self.handle.readinto(view) or 0  # type: ignore[attr-defined]
        self.left -= count
        return count


class StagedFile:
    """A file copied into a temp file beside its key; committing renames (or links) it."""

    sha256 = ""
    size = 0
    written = False

    def __init__(
        self, commit: Callable[[], None], drop: Callable[[], None], held: int, final: Path
    ) -> None:
        # `held`: the temp file's lock; `drop` removes the temp file, and the folders made for
        # it when the key was not written (a stopped publish left its version's folder empty)
        self._commit, self._drop, self._held, self._final = commit, drop, held, final

    def commit(self) -> None:
        try:
            self._commit()
        finally:
            # Asked of the file, not of how _commit ended: a stop may land just after the link.
            with contextlib.suppress(OSError):
                self.written = os.path.samestat(os.fstat(self._held), self._final.stat())
            self.abort()  # linked, the temp name goes; failed, the staged bytes go

    def abort(self) -> None:
        self._drop()
        if self._held >= 0:
            os.close(self._held)  # the lock goes with the last descriptor of the temp file
            self._held = -1


class StreamedFile(io.BufferedWriter):
    """A file written once, front to back, that is not read back by its writer (an object).

    Every WRITEBACK_BYTES the part written so far is handed to the disk and dropped from the
    page cache: POSIX_FADV_DONTNEED starts the writeback without waiting for it. The closing
    fsync then waits for the last few MB, not the whole object, and the next writes reuse the
    pages just dropped instead of fresh memory. A 1M-row batch output (800 MB) wrote ~2x faster.
    """

    written = 0
    dropped = 0

    def write(self, data: Any) -> int:
        count = super().write(data)
        self.written += count
        if self.written - self.dropped >= WRITEBACK_BYTES and hasattr(os, "posix_fadvise"):
            self.flush()
            os.posix_fadvise(self.fileno(), 0, self.written, os.POSIX_FADV_DONTNEED)
            self.dropped = self.written
        return count


def content_etag(data: bytes) -> str:
    """A directory store's ETag: the content's MD5, as S3's for an object put in one part."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def copy_object(reader: IO[bytes], writer: IO[bytes], keep_etag: bool = False) -> None:
    """Copy an object's file whole; with `keep_etag` its mtime too: a directory store's etag is
    the mtime and size, so the copy has its source's etag, as S3's CopyObject keeps an object's ETag.
    An input a failed `aiaas batch` re-run puts back from its copy then still reads as the
    one its earlier run scored (the summary's etag, the run's id), not as a new input."""
    writer.flush()
    copy_file(reader.fileno(), writer.fileno())
    if not keep_etag:  # a new object: a job copied from uploads/ is a new input to score
        return
    found = os.fstat(reader.fileno())
    os.utime(writer.fileno(), ns=(found.st_atime_ns, found.st_mtime_ns))


def copy_file(source: int, target: int, progress: Callable[[int], None] | None = None) -> int:
    """Copy the rest of `source` to `target` (descriptors, each at its offset) and return the
    bytes copied: by the kernel (copy_file_range: no pass through this process, a shared
    extent on a filesystem that can reflink), else read and written here. Every
    WRITEBACK_BYTES the written part is handed to the disk, as StreamedFile does."""
    copied = dropped = 0
    kernel = hasattr(os, "copy_file_range")
    while True:
        count = _kernel_copy(source, target) if kernel else _copy_through(source, target)
        if count is None:  # the kernel cannot: the rest goes through this process
            kernel = False
            continue
        if not count:
            if kernel and os.lseek(source, 0, os.SEEK_CUR) < os.fstat(source).st_size:
                kernel = False  # ended short of the size (a filesystem that does not copy)
                continue
            return copied
        copied += count
        if progress is not None:
            progress(count)
        if copied - dropped >= WRITEBACK_BYTES and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(target, 0, copied, os.POSIX_FADV_DONTNEED)
            dropped = copied


def _kernel_copy(source: int, target: int) -> int | None:
    try:
        return os.copy_file_range(source, target, COPY_BYTES)
    except OSError as exc:
        if exc.errno in _NO_KERNEL_COPY:
            return None
        raise


def _copy_through(source: int, target: int) -> int:
    chunk = memoryview(os.read(source, READ_BYTES))
    done = 0
    while done < len(chunk):
        done += os.write(target, chunk[done:])
    return done


class LocalStaged:
    """A directory store's staged object: a temp file beside its key (`LocalStore.open_staged`)."""

    def __init__(self, file: StreamedFile, publish: Callable[[str | None], str]) -> None:
        self.file: IO[bytes] = file
        self._publish = publish

    def publish(self, expect: str | None) -> str:
        self.file.flush()
        os.fsync(self.file.fileno())
        return self._publish(expect)


FOLDER_TRIES = 16  # prunes racing one writer: each lost folder is made again


def in_folder(folder: Path, make: Callable[[], T]) -> T:
    """`make()` a file in `folder`, made first; again when a delete pruned the new folder
    (`LocalStore._prune`) between the two."""
    for _ in range(FOLDER_TRIES):
        # A prune between mkdir's steps: exist_ok's FileExistsError when it removed the folder
        # mkdir found, FileNotFoundError when it removed the parent mkdir had just made.
        with contextlib.suppress(FileExistsError, FileNotFoundError):
            folder.mkdir(parents=True, exist_ok=True)
        try:
            return make()
        except FileNotFoundError:
            continue
    folder.mkdir(parents=True, exist_ok=True)
    return make()


# What a directory store adds to an object's name for its own files beside it: the temp file
# `.tmp-XXXXXXXX<name>` (mkstemp's 8 random characters) and, publishing it, a second link
# `<temp>.<hex>` (`LocalStore._publish`); the lock `.tmp-lock-<name>` adds less.
LINK_HEX_BYTES = 4
NAME_EXTRA = len(TEMP_PREFIX) + 8 + len(".") + 2 * LINK_HEX_BYTES


def longest_name(root: Path) -> int:
    """The most bytes a file name may have on the file system of `root` (or of the nearest
    folder above it that exists): NAME_MAX, 255 on ext4, XFS, Btrfs and tmpfs alike."""
    for folder in (root, *root.parents):
        try:
            return int(os.pathconf(folder, "PC_NAME_MAX"))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except (OSError, ValueError):
            break
    return 255


def lock_file(final: Path) -> Path:
    """The file that writers comparing and swapping `final` take turns on: beside it, hidden
    from listings like temp files, and never swept as one (KEPT_TEMP)."""
    return final.parent / f"{LOCK_PREFIX}{final.name}"


@contextlib.contextmanager
def holding_lock(final: Path) -> Iterator[None]:
    """`final`'s lock, held. A delete of the key removes the lock file while holding it (a
    pruned version kept `card/.tmp-lock-card.md` and its folders forever), so a lock got on a
    file no longer at its name keeps out nobody who opens the name afresh: take that one."""
    lock = lock_file(final)
    # Read-only: flock needs no more, and a lock file another user made (0644 under umask 022)
    # opens for any user who may write the store's folders, as deleting the key needs.
    flags = os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    while True:
        with in_folder(final.parent, lambda: os.fdopen(os.open(lock, flags, 0o666), "rb")) as held:
            fcntl.flock(held.fileno(), fcntl.LOCK_EX)
            if _is_named(held.fileno(), lock):
                try:
                    yield
                finally:
                    if not os.path.lexists(final):  # deleted, or a refused write of none: no
                        lock.unlink(missing_ok=True)  # lock kept for a key that is not there
                    fcntl.flock(held.fileno(), fcntl.LOCK_UN)
                return


def _is_named(fd: int, path: Path) -> bool:
    """Whether `path` is still the file open as `fd`."""
    try:
        named = path.lstat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def mkstemp_in(folder: Path, name: str) -> tuple[int, str]:
    """A new temp file in `folder`, held (a shared lock) while a descriptor of it is open, so
    that `remove_abandoned_temp` never takes a live writer's file."""
    fd, path = in_folder(
        folder, lambda: tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=name)
    )
    hold_fd(fd)
    return fd, path


def remove_abandoned_temp(
    folder: Path,
    settled_s: float = ABANDONED_AFTER_S,
    prune: Callable[[Path], None] | None = None,
    *,
    empty_folders: bool = False,
) -> int:
    """Delete the temp files under `folder` that no live writer holds: what a publish or a
    write killed midway (kill -9, a crash, a lost machine) left. Returns how many went. And
    the lock files of keys gone (before 3edb3d1 a delete left one beside every key written
    with its lock, and with it a pruned version's folders), `prune` told each one's folder.
    `empty_folders`: then every folder under `folder` (itself too) that holds nothing, and
    `prune` told its parent. A writer that loses its new folder to this makes it again
    (`in_folder`)."""
    if not folder.is_dir():
        return 0
    temp = [p for p in walk_files(folder) if p.name.startswith(TEMP_PREFIX)]  # folders go meanwhile
    gone = remove_abandoned((p for p in temp if not p.name.startswith(KEPT_TEMP)), settled_s)
    for lock in (p for p in temp if p.name.startswith(LOCK_PREFIX)):
        final = lock.with_name(lock.name[len(LOCK_PREFIX) :])
        if not os.path.lexists(final):
            with contextlib.suppress(OSError), holding_lock(final):
                pass  # which removes the lock of a key not there as it lets go
            if prune is not None:
                prune(lock.parent)
    if empty_folders:
        _remove_empty_folders(folder)
        if prune is not None:
            prune(folder.parent)
    return gone


def _remove_empty_folders(folder: Path) -> None:
    """Remove every folder under `folder` (itself too) that holds nothing, deepest first."""
    for path, _, _ in os.walk(folder, topdown=False):  # links to folders are not followed
        with contextlib.suppress(OSError):  # not empty: a file, or a folder kept below
            Path(path).rmdir()


@contextlib.contextmanager
def writing_local(dest: Path) -> Iterator[None]:
    """OS errors writing `dest`, a local file a download fills, as a StoreError naming it: a
    full disk there is not the store's (a pull into a small TMPDIR blamed the source store, or
    from S3 ended in a traceback)."""
    try:
        yield
    except OSError as exc:
        why = "no space left" if exc.errno == errno.ENOSPC else exc.strerror or type(exc).__name__
        raise StoreError(f"cannot write {dest}: {why}") from exc


def key_clash(root: Path, key: str, reason: str) -> None:
    """KeyClash when `key` cannot be a file under `root` because of another key: one of its
    folders is a file (`a.csv` for `a.csv/b.csv`), or it is a folder of keys."""
    folders = key.split("/")[:-1]
    blocking = next(
        ("/".join(folders[:depth]) for depth in range(1, len(folders) + 1)
         if root.joinpath(*folders[:depth]).is_file()),
        None,
    )  # fmt: skip
    if blocking is not None:
        what = f"{blocking!r} is a file where a folder should be"
    elif (root / key).is_dir():
        what = f"{key!r} is a folder of other keys"
    else:
        return
    clash = f"cannot use {key!r}: {what} (a directory store cannot hold both keys; S3 can)"
    raise KeyClash(f"cannot use {key!r} under {root}: {reason} ({what})", clash)


@contextlib.contextmanager
def os_errors(root: Path, key: str, missing: Callable[[], NotFound]) -> Iterator[None]:
    """OS errors as a directory store's: a missing object is `missing()`; a key another key
    blocks (a file where a folder should be) KeyClash; a link where a file should be (opened
    with O_NOFOLLOW) or anything else (permissions, a read-only or full disk) a StoreError
    naming it."""
    try:
        yield
    except FileNotFoundError:
        raise missing() from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StoreFull(f"no space left writing {key!r} under {root}") from exc
        reason = exc.strerror or type(exc).__name__
        if exc.errno == errno.EROFS:
            raise StoreReadOnly(f"cannot write {key!r} under {root}: {reason}") from exc
        if exc.errno == errno.ELOOP:
            raise StoreError(
                f"a file of {key!r} under {root} is a symbolic link: a store's objects are "
                "files, and links in it are not followed"
            ) from exc
        if exc.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            key_clash(root, key, reason)  # mkdir's "File exists" is not the object's
        raise StoreError(f"cannot use {key!r} under {root}: {reason}") from exc


@functools.cache
def file_mode() -> int:
    """0666 less the process umask, read once (os.umask can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def files_in(base: Path, folder: str, starting: str) -> list[str]:
    """`LocalStore.list_files`: the keys (`folder`/name) of the files directly in `base` whose
    names begin with `starting`, sorted; temp and lock files hidden, as `list_keys` hides them."""
    try:
        entries = list(os.scandir(base))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(
        f"{folder}/{entry.name}"
        for entry in entries
        if entry.name.startswith(starting)
        and not entry.name.startswith(TEMP_PREFIX)
        and entry.is_file(follow_symlinks=False)
    )
