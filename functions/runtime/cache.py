"""The per-container artifact cache: each model file is fetched once and verified before use.

Files are content-addressed (`<cache>/<sha256>.onnx`; a version with external data is a folder
named by all its files' hashes): a download goes to a private temp file renamed onto the
final name, so no load sees a partial file; loads racing in one container or in several
processes (`aiaas serve --workers N`) take turns (cache_lock.py): one downloads, the others
wait and check the file it renamed in. A file whose sha256 differs from its manifest is deleted
and never served. When the cache disk lacks room for a model (SnapStart caps /tmp at 512 MB) or
fills up while it is written (AIAAS_MODEL_LOAD=auto; another model's download), or the cache
directory cannot be written (a read-only file system, a file in its place, a missing HOME), it
is held in memory (model_in_memory.py), and a warning says so once a process for each reason
(cache_room.py). Before that, the least recently used entries no process holds make room
(cache_trim.py; also past AIAAS_CACHE_MAX_MB): each entry handed out is held (a shared flock)
until `release` (the pool dropped its version).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from functions.runtime.abandoned import hold, hold_fd, remove_abandoned
from functions.runtime.cache_lock import one_download
from functions.runtime.cache_room import DISK_MARGIN, MB, disk_problem, warn_held_in_memory
from functions.runtime.cache_trim import Holds, hold_entry, let_go, remove_entry, trim
from functions.runtime.errors import IntegrityError, ModelUnavailable, NotFound, StoreError
from functions.runtime.file_hashes import sha256_file, sha256_stream
from functions.runtime.manifest import MANIFEST_FILE, MODEL_FILE, ModelManifest
from functions.runtime.model_in_memory import ModelInMemory, ModelSource, fetch_into_memory
from functions.runtime.refs import version_prefix
from functions.runtime.settings import RuntimeSettings, TransferSettings, make_dirs
from functions.runtime.store import ObjectStore
from functions.runtime.transfer import FileSink, Sink, fetch_verified

# Moved to modules of their own (hashing, room on the disk, a model held in memory): still
# importable from here, as callers and tests do.
__all__ = [
    "DISK_MARGIN",
    "ArtifactCache",
    "CacheFull",
    "ModelInMemory",
    "ModelSource",
    "sha256_file",
    "sha256_stream",
    "version_digest",
]


class CacheFull(StoreError):
    """The cache disk ran out of room while a model's files were being written to it (`why`:
    said in the warning that the model is held in memory instead)."""

    why = "its disk filled up while the model was being written"


class ArtifactCache:
    """Fetches model files into a local directory (or memory), verified against their manifests."""

    def __init__(
        self,
        store: ObjectStore,
        directory: Path | None = None,
        transfer: TransferSettings | None = None,
    ) -> None:
        self.store = store
        if directory is None or transfer is None:  # a library caller: the environment's
            env = RuntimeSettings.from_env()
            directory, transfer = directory or env.cache_dir, transfer or env.transfer
        self.directory, self.transfer = directory, transfer
        self.holds = Holds()  # the entries handed out here and not released

    def source(self, manifest: ModelManifest) -> ModelSource:
        """The verified model, on disk or (when the disk lacks room, or settings say so) in memory."""
        if self.transfer.load == "memory":
            return self.fetch_into_memory(manifest)
        if self.transfer.load == "auto":
            problem = self._room_for(manifest)
            if problem is None:
                try:
                    return self.fetch(manifest)
                except CacheFull as full:  # filled by others meanwhile (another worker's
                    problem = "filled", full.why  # download), or a file size limit
            warn_held_in_memory(self.directory, *problem)
            return self.fetch_into_memory(manifest)
        self._room_for(manifest)  # "disk": the download fails if it still lacks room
        return self.fetch(manifest)

    def _room_for(self, manifest: ModelManifest) -> tuple[str, str] | None:
        """`_disk_problem` for `manifest`, once least recently used entries made room for it."""
        problem = self._disk_problem(manifest.weight_bytes)
        if problem is None or problem[0] != "full":
            return problem
        need = manifest.weight_bytes + DISK_MARGIN
        why = f"to make room for {manifest.name}:{manifest.version} ({need // MB} MB)"
        released = self.holds.released()
        if trim(self.directory, free=need, keep={self.entry(manifest)}, released=released, why=why):
            return self._disk_problem(manifest.weight_bytes)
        return problem

    def entry(self, manifest: ModelManifest) -> Path:
        """`manifest`'s entry in the cache: its file, or the folder of its files."""
        if manifest.weight_files:
            return self.directory / version_digest(manifest)
        return self.directory / f"{manifest.file.sha256}.onnx"

    def lands_in_memory(self, manifest: ModelManifest) -> bool:
        """Whether `source` would hold `manifest`'s files in memory (as things stand now)."""
        if self.transfer.load == "auto":
            return self._disk_problem(manifest.weight_bytes) is not None
        return self.transfer.load == "memory"

    def release(self, manifest: ModelManifest, *, pruned: bool = False) -> None:
        """`manifest`'s files are no longer used here (its pool dropped the version): the entry
        may go to make room once no other hand-out of it is held; `pruned` (gone from the
        registry, never loaded again): it goes now, unless another process holds it."""
        if self.holds.release(entry := self.entry(manifest)):
            if pruned:
                remove_entry(entry, f"{manifest.name}:{manifest.version} was pruned")
            self._bound(keep=set())

    def _disk_problem(self, size: int) -> tuple[str, str] | None:
        """(reason, what it is) the cache directory cannot take `size` bytes, else None."""
        return disk_problem(self.directory, size)

    def fetch(self, manifest: ModelManifest) -> Path:
        """A local path of the verified model file for `manifest`, its external data beside it;
        held (never removed to make room) until `release`."""
        fetch = self._fetch_folder if manifest.weight_files else self._fetch_file
        path = fetch(manifest)
        self._bound(keep={self.entry(manifest)})
        return path

    def _bound(self, keep: set[Path]) -> None:
        """Past AIAAS_CACHE_MAX_MB (when set), the least recently used entries not held go."""
        if most := self.transfer.cache_max_bytes:
            why = f"the cache is past AIAAS_CACHE_MAX_MB ({most // MB} MB)"
            trim(self.directory, most=most, keep=keep, released=self.holds.released(), why=why)

    def _fetch_file(self, manifest: ModelManifest) -> Path:
        expected = manifest.file.sha256
        final = self.entry(manifest)
        # A damaged entry is not deleted first: the verified download replaces it atomically, and
        # an unlink could remove the good file another process has just renamed into place.
        before = _inode(final, folder=False)
        held = hold_entry(final, folder=False)  # before its check: never removed after it
        if held is not None and sha256_file(final) == expected:
            return self.holds.add(final, held)
        let_go(held)
        with self._one_download(manifest, final) as waited:
            now = _inode(final, folder=False)
            if now is not None and (waited or now != before):  # another's download landed
                held = hold_entry(final, folder=False)
                if held is not None and sha256_file(final) == expected:  # checked here too
                    return self.holds.add(final, held)
                let_go(held)
            return self._download_file(manifest, final)

    def _download_file(self, manifest: ModelManifest, final: Path) -> Path:
        expected = manifest.file.sha256
        with self._scratch(manifest, final.name) as tmp:
            self._download(manifest, MODEL_FILE, manifest.file.size, expected, tmp)
            tmp.replace(final)
            held = hold_entry(final, folder=False)  # the scratch's lock holds it until then
        return self.holds.add(final, held)

    def _fetch_folder(self, manifest: ModelManifest) -> Path:
        # A version with external data is a folder named by all its files' hashes, renamed into
        # place whole: onnxruntime finds the data files beside the model by their names.
        final = self.entry(manifest)
        damaged = _inode(final)  # checked below: a folder here now is whole, or damaged
        held = hold_entry(final, folder=True)
        if held is not None and damaged is not None and _folder_intact(final, manifest):
            return self.holds.add(final, held) / MODEL_FILE
        let_go(held)
        with self._one_download(manifest, final) as waited:
            now = _inode(final)
            if now is not None and (waited or now != damaged):  # another's download landed
                held = hold_entry(final, folder=True)
                if held is not None and _folder_intact(final, manifest):  # checked here too
                    return self.holds.add(final, held) / MODEL_FILE
                let_go(held)
                damaged = now
            return self._download_folder(manifest, final, damaged)

    def _download_folder(self, manifest: ModelManifest, final: Path, damaged: int | None) -> Path:
        with self._scratch(manifest, final.name, folder=True) as tmp:
            self._download(
                manifest, MODEL_FILE, manifest.file.size, manifest.file.sha256, tmp / MODEL_FILE
            )
            for item in manifest.weight_files:
                (tmp / item.path).parent.mkdir(parents=True, exist_ok=True)
                self._download(manifest, item.path, item.size, item.sha256, tmp / item.path)
            now = _inode(final)
            if now is not None and now != damaged:
                # A twin (another worker) renamed its verified copy in meanwhile, and may be
                # loading it: used as it is. Removed, its loads failed (4 of 15 cold starts).
                return self.holds.add(final, hold_entry(final, folder=True)) / MODEL_FILE
            aside = tmp.with_name(f"{tmp.name}-damaged")  # swept as a download's leftover
            with contextlib.suppress(OSError):  # the damaged one: moved aside, not half-removed
                final.rename(aside)
            with contextlib.suppress(OSError):  # a racing twin renamed its verified copy first
                tmp.rename(final)
            shutil.rmtree(aside, ignore_errors=True)
            held = hold_entry(final, folder=True)  # the scratch's lock holds it until then
        return self.holds.add(final, held) / MODEL_FILE

    def fetch_into_memory(self, manifest: ModelManifest) -> ModelInMemory:
        """The verified model and its external data in memory: nothing written to disk."""
        return fetch_into_memory(manifest, self._transfer)

    def _download(self, manifest: ModelManifest, rel: str, size: int, sha: str, dest: Path) -> None:
        sink = FileSink(dest, size)
        try:
            self._transfer(manifest, rel, size, sha, sink)
        finally:
            sink.close()

    def _transfer(self, manifest: ModelManifest, rel: str, size: int, sha: str, sink: Sink) -> None:
        ref = f"{manifest.name}:{manifest.version}"
        prefix = version_prefix(manifest.name, manifest.version)
        try:
            fetch_verified(self.store, f"{prefix}/{rel}", size, sha, sink, self.transfer)
        except NotFound:
            if not self.store.exists(f"{prefix}/{MANIFEST_FILE}"):
                # Pruned since its manifest was read (a prune takes it first): a 404, not a 503
                from functions.runtime.prune_log import version_not_found  # not a cold start's

                raise version_not_found(self.store, manifest.name, manifest.version) from None
            raise ModelUnavailable(
                f"{ref}: the manifest exists but "
                f"{'the model file' if rel == MODEL_FILE else 'data file ' + rel} is missing "
                "from the store",
                public_message=f"model {ref} is incomplete in the registry (its {rel} is "
                "missing) and is not served",
            ) from None
        except IntegrityError as exc:
            raise IntegrityError(
                f"{ref}: {exc.message}",
                public_message=f"model {ref} failed its integrity check (its {rel} is not the "
                "file its manifest lists) and is not served",
            ) from exc

    def _one_download(
        self, manifest: ModelManifest, final: Path
    ) -> contextlib.AbstractContextManager[bool]:
        """Held while this process downloads `final` (cache_lock.py): the others wait for it."""
        where = f"{self.store.uri}/{version_prefix(manifest.name, manifest.version)}/{MODEL_FILE}"
        with contextlib.suppress(OSError):  # its lock file's folder; failing, `_scratch` says why
            make_dirs(self.directory)
        return one_download(self.directory, final.name, where, manifest.weight_bytes)

    @contextlib.contextmanager
    def _scratch(
        self, manifest: ModelManifest, name: str, *, folder: bool = False
    ) -> Iterator[Path]:
        """A private temp file (or folder) in the cache directory, removed unless renamed;
        held while in use, so that the next download's sweep (of what a stopped or killed
        download left: up to a model's size each) never takes it."""
        ref = f"{manifest.name}:{manifest.version}"
        try:
            make_dirs(self.directory)
            remove_abandoned(self.directory.glob(".part-*"))
            if folder:
                tmp = Path(tempfile.mkdtemp(dir=self.directory, prefix=f".part-{name[:12]}-"))
                held = hold(tmp)
            else:
                held, tmp_name = tempfile.mkstemp(dir=self.directory, prefix=".part-")
                hold_fd(held)
                tmp = Path(tmp_name)
        except OSError as exc:
            raise StoreError(f"cannot write the model cache {self.directory}: {exc}") from exc
        try:
            yield tmp
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise CacheFull(f"{ref}: cannot cache model file: cache disk is full") from exc
            if exc.errno == errno.EFBIG:  # `ulimit -f`, systemd's LimitFSIZE, a FAT32 disk
                too_big = CacheFull(f"{ref}: cannot cache model file: {exc.strerror}")
                too_big.why = "a model file is larger than this process may write (File too large)"
                raise too_big from exc
            raise StoreError(f"{ref}: cannot cache model file: {exc}") from exc
        finally:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            os.close(held)


def version_digest(manifest: ModelManifest) -> str:
    """A name for a multi-file version's cache folder: the hash of all its files' hashes."""
    lines = [f"{MODEL_FILE} {manifest.file.sha256}"]
    lines += [f"{f.path} {f.sha256}" for f in manifest.weight_files]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _inode(entry: Path, *, folder: bool = True) -> int | None:
    """The entry's inode (a folder's, or a file's), or None when there is none of that kind:
    one renamed in has a new one."""
    try:
        found = entry.stat()
    except OSError:
        return None
    return found.st_ino if stat.S_ISDIR(found.st_mode) == folder else None


def _folder_intact(folder: Path, manifest: ModelManifest) -> bool:
    files = [(MODEL_FILE, manifest.file.sha256)] + [
        (f.path, f.sha256) for f in manifest.weight_files
    ]
    return all((folder / rel).is_file() and sha256_file(folder / rel) == sha for rel, sha in files)
