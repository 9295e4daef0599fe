"""A big file's sha256 and its multipart parts' CRC32s, from one read, remembered for the upload.

Publishing reads a model twice: once for its signature and the manifest's sha256, once to send
it. Hashing again as it sends (0.6 CPU-s a GB for sha256, and botocore's CRC32 of each part)
was what made `publish` slower than boto3's `upload_file` on a busy machine (issue #16). So the
first read also takes each part's CRC32, and the upload of the same file (same inode, size and
modification time, same part size) sends those CRC32s with its parts instead of hashing: S3
checks each part's bytes against its CRC32 and refuses a part that differs, so the object
stored is the file the sha256 was taken of. A file changed since (another time stamp) is
hashed while it is sent, as before, and a sha256 that no longer matches the manifest's is a
refused publish. (moto does not check the CRC32s it is sent; S3 does.)

The signature read takes the model's external data files' digests too, and takes them all in
a thread while onnxruntime loads the model (`DigestsAside`: hashlib and zlib let go of the GIL
on big buffers), so the read costs about the longer of the two, not their sum.

A directory store takes no part checksums: its signature read takes the sha256 alone, and its
copy of the same unchanged file is made by the kernel, not read through a hash again
(`LocalStore.stage_file`).
"""

from __future__ import annotations

import base64
import hashlib
import threading
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MAX_PARTS = 10_000  # S3's limit: a bigger file gets bigger parts
REMEMBERED = 256  # files: a publish needs those it just read (a model may keep many data files)


READ_BYTES = 16 * 1024 * 1024  # a read without parts takes this much at a time


@dataclass(frozen=True)
class FileDigests:
    sha256: str
    part_bytes: int  # 0: no parts, no CRC32s (taken for a store that uses none)
    crc32: tuple[str, ...]  # each part's, base64 of its big-endian CRC32 (S3's ChecksumCRC32)


def part_size(size: int, part_bytes: int) -> int:
    """The multipart part size for a file of `size` bytes: `part_bytes`, or more past
    MAX_PARTS parts."""
    return max(part_bytes, -(-size // MAX_PARTS))


_known: OrderedDict[tuple[int, int, int, int, int], FileDigests] = OrderedDict()
_lock = threading.Lock()


def _identity(path: Path, part: int) -> tuple[int, int, int, int, int]:
    stat = path.stat()
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, part)


class Stopped(Exception):
    """A digest given up before its file's end (`DigestsAside.stop`)."""


def digest_file(
    path: Path, part_bytes: int | None, stop: threading.Event | None = None
) -> FileDigests:
    """The file's sha256 and its parts' CRC32s in one read, remembered for `known`.
    `part_bytes` None: the sha256 alone (~0.3 CPU-s a GB less), for a store that takes no part
    checksums. `stop` set: Stopped, at the next part."""
    before = path.stat()
    part = part_size(before.st_size, part_bytes) if part_bytes else 0
    digest, crcs = hashlib.sha256(), []
    with path.open("rb") as source:
        while body := source.read(part or READ_BYTES):
            if stop is not None and stop.is_set():
                raise Stopped(str(path))
            digest.update(body)
            if part:
                crcs.append(base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode())
    found = FileDigests(digest.hexdigest(), part, tuple(crcs))
    key = _identity(path, part)
    if key[:4] == (before.st_dev, before.st_ino, before.st_size, before.st_mtime_ns):
        with _lock:  # written while read: remembered under no time stamp it could match
            _known[key] = found
            while len(_known) > REMEMBERED:
                _known.popitem(last=False)
    return found


def known(path: Path, part: int) -> FileDigests | None:
    """What `digest_file` took of this very file (unchanged since) in parts of `part` bytes."""
    with _lock:
        return _known.get(_identity(path, part))


def known_sha256(path: Path) -> str | None:
    """The sha256 `digest_file` took of this very file (unchanged since), in parts or not."""
    try:
        identity = _identity(path, 0)[:4]
    except OSError:
        return None
    with _lock:
        for key, found in _known.items():
            if key[:4] == identity:
                return found.sha256
    return None


class DigestsAside:
    """`digest_file` of each of `paths`, in order, in a thread started now: `sha256` waits for
    a file's; `stop` gives up what is left (a model refused before its files were read
    through). An error reading a file is raised by `sha256` of that file."""

    def __init__(self, paths: Sequence[Path], part_bytes: int | None) -> None:
        self.paths, self._part = tuple(paths), part_bytes
        self._found: dict[Path, FileDigests | BaseException] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aiaas-digests", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for path in self.paths:
            try:
                self._found[path] = digest_file(path, self._part, self._stop)
            except Stopped:
                return
            except Exception as exc:  # raised to whoever asks for this file's sha256
                self._found[path] = exc

    def wait(self) -> None:
        self._thread.join()

    def sha256(self, path: Path) -> str:
        self._thread.join()
        found = self._found[path]
        if isinstance(found, BaseException):
            raise found
        return found.sha256

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
