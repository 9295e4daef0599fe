"""Staged uploads to S3: the bytes sent and hashed in one read, the object visible on commit.

A big file goes as a multipart upload: one thread reads it front to back, feeding each part to
the sha256 and then to a pool that sends up to `workers` parts at once (one S3 connection gives
~90 MB/s). The object appears only when the upload is completed (conditionally, for a claim),
so a caller can check the digest first and abort: publishing reads each file once and still
never lets bytes other than its manifest's become visible. A small file is one conditional PUT.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from functions.runtime import file_digests
from functions.runtime.errors import StoreError
from functions.runtime.settings import TransferSettings
from functions.runtime.store import Moved
from functions.runtime.write_answer import to_its_answer

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from functions.runtime.s3store import S3Store

Errors = Callable[[], contextlib.AbstractContextManager[None]]  # the store's errors, for a key

# Each part carries a CRC32 that S3 checks, and the object a checksum of those, as boto3's
# upload_file sends them. Declared up front, the server need not compute a whole-object
# checksum of its own at completion (moto's copies and checksums the whole object again).
CHECKSUM: Final = "CRC32"


class PutStaged:
    """A small file read into memory; committing PUTs it."""

    def __init__(
        self, store: S3Store, key: str, data: bytes, *, if_absent: bool, progress: Moved | None
    ) -> None:
        self.store, self.key, self.data, self.if_absent = store, key, data, if_absent
        self.progress, self.written = progress, False
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.size = len(data)

    def commit(self) -> None:
        try:
            to_its_answer(self._put, self._landed)  # a stop meanwhile: raised once it is known
        finally:
            self.abort()

    def _put(self) -> None:
        self.store.put_bytes(self.key, self.data, if_absent=self.if_absent)

    def _landed(self, _: None) -> None:
        self.written = True
        if self.progress is not None:  # sent only now
            self.progress(self.size)

    def abort(self) -> None:
        self.data = b""


def _check_memory(src: Path, size: int, part: int, workers: int) -> None:
    """StoreError, before anything is sent, when the parts in flight (up to `workers` parts)
    would not fit in the memory available now (Linux's MemAvailable; elsewhere unchecked):
    `AIAAS_TRANSFER_PART_MB=500` with 16 workers holds 8 GB, and died in a MemoryError."""
    held = min(workers, -(-size // part)) * min(part, size)
    available = _available_memory()
    if available is not None and held > available:
        raise StoreError(
            f"uploading {src} holds up to {held / 1e6:.0f} MB of parts in memory "
            f"(AIAAS_TRANSFER_WORKERS x AIAAS_TRANSFER_PART_MB), more than the "
            f"{available / 1e6:.0f} MB available; lower AIAAS_TRANSFER_PART_MB or "
            "AIAAS_TRANSFER_WORKERS"
        )


def _available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes, None where there is none."""
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class MultipartStaged:
    """A file sent as the parts of a multipart upload not yet completed."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        key: str,  # the full key, prefix included
        src: Path,
        *,
        if_absent: bool,
        transfer: TransferSettings,
        errors: Errors,
        if_match: str | None = None,
        progress: Moved | None = None,
    ) -> None:
        self.client, self.bucket, self.key, self.if_absent = client, bucket, key, if_absent
        self.if_match, self.etag, self.written = if_match, "", False
        self.errors, self.progress = errors, progress
        self.upload_id: str | None = None
        digest, self.size = hashlib.sha256(), 0
        size = src.stat().st_size
        part = file_digests.part_size(size, transfer.part_bytes)
        _check_memory(src, size, part, transfer.workers)
        # The file as hashed when its signature was read: sent with those CRC32s, not hashed
        # again (file_digests.py); any other file is hashed as it is sent.
        self.known = file_digests.known(src, part)
        with errors():
            self.upload_id = client.create_multipart_upload(
                Bucket=bucket, Key=key, ChecksumAlgorithm=CHECKSUM
            )["UploadId"]
        try:
            with errors():
                self.parts = self._send(src, digest, part, transfer.workers)
            if self.known is not None and file_digests.known(src, part) is None:
                raise StoreError(f"{src} changed while it was being published; publish again")
        except BaseException:
            self.abort()
            raise
        self.sha256 = digest.hexdigest() if self.known is None else self.known.sha256

    def _send(self, src: Path, digest: Any, part: int, workers: int) -> list[dict[str, Any]]:
        known = self.known

        def send(number: int, body: bytes) -> dict[str, Any]:
            # A CRC32 given is sent as is (S3 checks the part against it); else botocore's.
            crc: dict[str, Any] = {}
            if known is not None:
                crc["ChecksumCRC32"] = known.crc32[number - 1]
            sent = self.client.upload_part(
                Bucket=self.bucket, Key=self.key, UploadId=str(self.upload_id),
                PartNumber=number, Body=body, ChecksumAlgorithm=CHECKSUM, **crc,
            )  # fmt: skip
            if self.progress is not None:  # from the pool's threads: a thread-safe counter
                self.progress(len(body))
            return {
                "ETag": sent["ETag"],
                "PartNumber": number,
                "ChecksumCRC32": sent.get("ChecksumCRC32") or crc["ChecksumCRC32"],
            }

        sent: list[dict[str, Any]] = []
        pending: deque[Future[dict[str, Any]]] = deque()
        with ThreadPoolExecutor(workers, thread_name_prefix="aiaas-upload") as pool:
            try:
                with src.open("rb") as source:
                    # Never more than the file holds: read(n) allocates n bytes first, and a
                    # part size over the file's whole size died here in a MemoryError.
                    left = os.fstat(source.fileno()).st_size
                    while body := source.read(min(part, left) if left > 0 else part):
                        left -= len(body)  # hashlib releases the GIL: sends overlap
                        if known is None:
                            digest.update(body)
                        elif len(sent) + len(pending) >= len(known.crc32):  # grew since
                            raise StoreError(f"{src} grew while it was being published")
                        self.size += len(body)
                        pending.append(pool.submit(send, len(sent) + len(pending) + 1, body))
                        if len(pending) >= workers:  # at most `workers` parts held
                            sent.append(pending.popleft().result())
                sent.extend(future.result() for future in pending)
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        return sent

    def commit(self) -> None:
        try:  # S3 completes it even if a stop lands meanwhile: raised once its answer is known
            to_its_answer(self._complete, self._completed)
        finally:
            self.abort()  # a refused completion leaves the parts stored (and billed)

    def _complete(self) -> Any:
        condition = {"IfNoneMatch": "*"} if self.if_absent else {}
        if self.if_match is not None:  # S3 checks it; moto (5.2) checks only If-None-Match here
            condition = {"IfMatch": f'"{self.if_match}"'}
        with self.errors():
            return self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=str(self.upload_id),
                MultipartUpload={"Parts": self.parts},  # type: ignore[typeddict-item]
                **condition,  # type: ignore[arg-type]
            )

    def _completed(self, done: Any) -> None:
        self.upload_id, self.etag = None, str(done.get("ETag", "")).strip('"')
        self.written = True

    def abort(self) -> None:
        if self.upload_id is None:
            return
        upload_id, self.upload_id = self.upload_id, None
        with contextlib.suppress(Exception):  # the error that led here is the one to report
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)


class SpooledStaged:
    """An S3 store's staged object: a spool file on local disk (`S3Store.open_staged`)."""

    def __init__(self, file: IO[bytes], publish: Callable[[str | None], str]) -> None:
        self.file, self._publish = file, publish

    def publish(self, expect: str | None) -> str:
        self.file.flush()
        return self._publish(expect)
