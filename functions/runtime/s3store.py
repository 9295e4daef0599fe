"""The S3 object store (any S3-compatible server: boto3 honours AWS_ENDPOINT_URL[_S3]).

Conditional writes (`If-None-Match: *`) make publishing a version atomic; boto3 is imported and
its client built only when a store is first used (~400 ms), and the client is shared by the
process's stores of the same settings (s3client.py).
"""

from __future__ import annotations

import contextlib
import functools
import io
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from functions.runtime.abandoned import ABANDONED_AFTER_S
from functions.runtime.errors import AiaasError, NotFound, StoreError
from functions.runtime.names import TEMP_PREFIX
from functions.runtime.s3client import forget_s3_client, make_s3_client, shared_s3_client
from functions.runtime.s3deletes import came_on_retry, delete_objects, not_deleted
from functions.runtime.s3failures import CORRUPTED, broken, corrupted, retried, store_error, tries
from functions.runtime.s3resume import ResumedBody
from functions.runtime.s3upload import MultipartStaged, PutStaged, SpooledStaged
from functions.runtime.settings import RuntimeSettings, S3Settings, TransferSettings
from functions.runtime.store import (
    MULTIPART_THRESHOLD,
    Moved,
    ObjectChanged,
    ObjectExists,
    ObjectInfo,
    StagedObject,
    StagedUpload,
    Stamp,
    StoreLocation,
    check_key,
)
from functions.runtime.store_parts import writing_local
from functions.runtime.transfer import download

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DELETE_BATCH = 1000  # keys one DeleteObjects request may name
T = TypeVar("T")


class S3Store:
    """An S3 bucket and prefix. boto3 honours AWS_ENDPOINT_URL[_S3] for S3-compatible servers."""

    takes_part_checksums = True
    name_bytes: int | None = None  # a key's parts: any length within its 1,024 bytes

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: S3Client | None = None,
        settings: S3Settings | None = None,
        transfer: TransferSettings | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.location = StoreLocation(bucket, f"{self.prefix}/" if self.prefix else "", True)
        self._client = client
        self.settings = settings
        self.transfer = transfer  # None: the environment's, read when a big upload starts

    def reset_client(self) -> None:
        """Forget the client; the next call builds a fresh one (after a SnapStart restore).
        Other stores of the process that share it keep theirs, mid-request or not."""
        client, self._client = self._client, None
        if client is not None:
            forget_s3_client(client)

    @property
    def client(self) -> S3Client:
        # boto3 costs ~400 ms to import and build a client: pay it only when S3 is used, and
        # once per process (s3client.py: `aiaas serve` has a store per model).
        if self._client is None:
            self._client = shared_s3_client(self.settings)
        return self._client

    def _moves(self) -> TransferSettings:
        return RuntimeSettings.from_env().transfer if self.transfer is None else self.transfer

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _error(self, exc: Exception, key: str) -> AiaasError:
        return store_error(exc, key, self.uri, self.bucket)

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError
        from s3transfer import exceptions as transfer

        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, key) from exc
        # The transfer manager's own errors: a download or upload cut off more times than it
        # retries, a failed multipart part. Uncaught, they were a 500 in the predict function.
        except (
            Boto3Error,
            transfer.RetriesExceededError,
            transfer.S3UploadFailedError,
            transfer.S3DownloadFailedError,
        ) as exc:
            # boto3's upload_file wraps the ClientError it caught (a missing bucket, a denied
            # put): said as any other call's, not as "S3UploadFailedError('Failed to ...')".
            cause = exc.__context__ if isinstance(exc.__context__, ClientError) else None
            cause = cause or getattr(exc, "last_exception", None)  # s3transfer's tries ran out
            if isinstance(cause, Exception):  # said as its cause: not "Max Retries Exceeded"
                raise self._error(cause, key) from exc
            raise StoreError(f"S3 transfer of {self.uri}/{key} failed: {exc!r}") from exc
        except Exception as exc:  # urllib3's and http.client's, a cut botocore let through
            if not broken(exc):
                raise
            raise self._error(exc, key) from exc

    def _read(self, key: str, call: Callable[[], T]) -> T:
        """A read (`call`, its body read too) tried again where the connection broke and
        botocore does not retry (s3failures.py): a manifest cut mid-read failed `aiaas versions`."""
        with self._errors(key):
            return retried(call, tries(self.client))

    def get_bytes(self, key: str) -> bytes:
        return self._read(key, lambda: self._get(key)[0])

    def _get(self, key: str) -> tuple[bytes, str]:
        response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        return response["Body"].read(), str(response["ETag"]).strip('"')

    def put_bytes(
        self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None
    ) -> None:
        # S3 conditional writes: If-None-Match creates only, If-Match replaces only that version.
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if if_absent else {}
        if if_match is not None:
            extra["IfMatch"] = f'"{if_match}"'
        try:
            with self._errors(key):
                self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)
        except ObjectExists as exc:
            if if_match is not None:
                raise ObjectChanged(f"object {key!r} changed since it was read") from exc
            raise

    def read_versioned(self, key: str) -> tuple[bytes, str]:
        return self._read(key, lambda: self._get(key))

    def download_file(self, key: str, dest: Path, progress: Moved | None = None) -> None:
        # Ranged GETs resumed where cut, by a deadline (transfer.py): s3transfer's had none
        with writing_local(dest), self._errors(key):  # the network's errors the store's
            download(self, key, self.head(key).size, dest, self._moves(), progress)

    def upload_file(self, src: Path, key: str, *, if_absent: bool = False) -> None:
        if if_absent:
            # s3transfer cannot pass If-None-Match: a check-then-upload would let two writers
            # both win, so conditional objects go through our own multipart upload.
            self.stage_file(src, key, if_absent=True).commit()
            return
        with self._errors(key):
            self.client.upload_file(str(src), self.bucket, self._key(key), Config=_transfer())

    def stage_file(
        self, src: Path, key: str, *, if_absent: bool = False, progress: Moved | None = None
    ) -> StagedUpload:
        if Path(src).stat().st_size < MULTIPART_THRESHOLD:
            data = Path(src).read_bytes()
            return PutStaged(self, key, data, if_absent=if_absent, progress=progress)
        return MultipartStaged(
            self.client,  # built once, before the upload's threads share it (it is thread-safe)
            self.bucket,
            self._key(key),
            Path(src),
            if_absent=if_absent,
            transfer=self._moves(),
            errors=lambda: self._errors(key),
            progress=progress,
        )

    @contextlib.contextmanager
    def open_read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[IO[bytes]]:
        from botocore.exceptions import BotoCoreError, ReadTimeoutError

        if end is not None and end <= start:  # an empty range: nothing, as a file's read
            yield io.BytesIO(b"")  # (S3 takes "bytes=5-4" as no range: the whole object)
            return
        last = "" if end is None else str(end - 1)
        ranged: dict[str, Any] = {"Range": f"bytes={start}-{last}"} if start or last else {}
        try:
            got = self._read(
                key,
                lambda: self.client.get_object(Bucket=self.bucket, Key=self._key(key), **ranged),
            )
        except StoreError as exc:  # a range starting at the end: nothing left, as a file's seek
            cause = getattr(exc.__cause__, "response", None) or {}
            if start and cause.get("Error", {}).get("Code") == "InvalidRange":
                yield io.BytesIO(b"")
                return
            raise
        etag, ends = got["ETag"], start + got["ContentLength"]

        def rest(at: int) -> Any:  # a cut mid-read resumed (s3resume.py), of this object only
            return self.client.get_object(
                Bucket=self.bucket, Key=self._key(key), Range=f"bytes={at}-{ends - 1}", IfMatch=etag
            )

        body = ResumedBody(got["Body"], lambda at: self._read(key, lambda: rest(at)), at=start,
                           end=ends, tries=tries(self.client), where=f"{self.uri}/{key}")  # fmt: skip
        with contextlib.closing(body):
            try:
                yield body  # type: ignore[misc]
            except BotoCoreError as exc:  # the stream broke mid-read: reset, timeout, cut short
                why = f"the connection broke mid-read, {body.tries} times in a row: {exc}"
                if corrupted(exc):  # at the end: its bytes were handed on, none resumed
                    why = f"{CORRUPTED}: {exc}; read it again"
                if isinstance(exc, ReadTimeoutError):  # its URL is "None": the body has none
                    waited = getattr(self.client.meta.config, "read_timeout", None)
                    wait = f" for {waited:g} s" if isinstance(waited, int | float) else ""
                    why = (
                        f"no data came{wait} mid-read (AIAAS_S3_READ_TIMEOUT): "
                        "S3 or the network stalled"
                    )
                raise StoreError(f"S3 error reading {self.uri}/{key}: {why}") from exc

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[IO[bytes]]:
        # Spool to local disk, then upload (multipart when large): memory stays bounded and the
        # object appears whole or not at all.
        with tempfile.NamedTemporaryFile(prefix="aiaas-upload-") as spool:
            yield spool
            spool.flush()
            self.upload_file(Path(spool.name), key)

    @contextlib.contextmanager
    def open_staged(self, key: str) -> Iterator[StagedObject]:
        with tempfile.NamedTemporaryFile(prefix="aiaas-upload-") as spool:
            yield SpooledStaged(spool, functools.partial(self._publish, Path(spool.name), key))

    def _publish(self, src: Path, key: str, expect: str | None) -> str:
        """PUT (multipart when big) `src` as `key` only while it is version `expect`: S3's
        If-Match / If-None-Match, which S3 checks when the object is completed."""
        try:
            if src.stat().st_size < MULTIPART_THRESHOLD:
                with self._errors(key):
                    sent = self.client.put_object(
                        Bucket=self.bucket, Key=self._key(key), Body=src.read_bytes(),
                        **_condition(expect),
                    )  # fmt: skip
                return sent["ETag"].strip('"')
            staged = MultipartStaged(
                self.client, self.bucket, self._key(key), src, if_absent=expect is None,
                if_match=expect, transfer=self._moves(), errors=lambda: self._errors(key),
            )  # fmt: skip
            staged.commit()
            return staged.etag
        except (ObjectExists, NotFound) as exc:  # If-Match of an object since deleted: 404
            raise ObjectChanged(f"object {key!r} changed since it was read") from exc

    def version(self, key: str) -> str | None:
        try:
            return self.head(key).etag
        except NotFound:
            return None

    def head(self, key: str) -> ObjectInfo:
        meta = self._read(
            key, lambda: self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        )
        etag, modified = meta["ETag"].strip('"'), meta["LastModified"].timestamp()
        return ObjectInfo(key=key, size=meta["ContentLength"], etag=etag, modified=modified)

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except NotFound:
            return False
        return True

    def _pages(self, prefix: str, starting: str = "", **more: Any) -> Iterator[Any]:
        """ListObjectsV2's pages below `prefix`/ (the bucket's prefix) of names from `starting`;
        `Delimiter="/"`: the folder's own keys, its subfolders as CommonPrefixes."""
        full = (self._key(prefix) if prefix else self.prefix).rstrip("/")
        ask = {"Bucket": self.bucket, "Prefix": f"{full}/{starting}" if full else starting, **more}
        while True:  # the paginator's loop, with each page's request retried as a read
            page: Any = self._read(prefix, lambda: self.client.list_objects_v2(**ask))
            yield page
            if not page.get("IsTruncated"):
                return
            ask["ContinuationToken"] = page["NextContinuationToken"]

    def _keys(self, pages: Iterator[Any]) -> Iterator[str]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in pages:
            for item in page.get("Contents", []):
                # A directory store's lock and stamp files, carried by a sync of it to S3
                # (`aws s3 sync STORE s3://...`): hidden as the directory store hides them.
                # So is a folder marker (`x/`, the console's "Create folder"): no object a
                # store key names; listed, it broke pull, and every prune of its model.
                name = item["Key"].rpartition("/")[2]
                if name and not name.startswith(TEMP_PREFIX):
                    yield item["Key"][strip:]

    def list_keys(self, prefix: str, after: str = "") -> Iterator[str]:
        # `after` is a place, not a key to check: a listing's own (`day2//x.csv`) was refused.
        full = f"{self.prefix}/{after}" if self.prefix and after else after
        start = listing_start(full)
        keys = self._keys(self._pages(prefix, **({"StartAfter": start} if start else {})))
        return keys if start == full else (key for key in keys if key > after)

    def list_files(self, folder: str, starting: str = "") -> list[str]:
        return sorted(self._keys(self._pages(folder, starting, Delimiter="/")))

    def list_dirs(self, prefix: str) -> list[str]:
        pages = self._pages(prefix, Delimiter="/")
        found = [p["Prefix"].rstrip("/").rpartition("/")[2] for page in pages
                 for p in page.get("CommonPrefixes", [])]  # fmt: skip
        return sorted(found)

    def answers(self, prefix: str) -> None:
        # One request (MaxKeys=1: the first page only) however many folders `prefix` holds: a
        # probe every few seconds walked every page (a LIST is priced as a PUT, 12.5x a GET).
        next(self._pages(prefix, Delimiter="/", MaxKeys=1))

    def delete_many(self, keys: Sequence[str]) -> None:
        # DeleteObjects: 1,000 keys a request (S3's most); the keys it failed go again (s3deletes).
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [self._key(key) for key in keys[start : start + DELETE_BATCH]]
            with self._errors(keys[start]):
                failed = delete_objects(self.client, self.bucket, batch)
            if failed:
                raise StoreError(not_deleted(failed, len(batch)))

    def remove_abandoned(
        self, prefix: str, *, settled_s: float = ABANDONED_AFTER_S, empty_folders: bool = False
    ) -> int:
        # Parts of a killed multipart upload are invisible to listings; the bucket's lifecycle
        # rule aborts them (template.yaml, abort-incomplete-uploads). Aborting them here could
        # cut off a live publisher's upload: nothing tells the two apart.
        return 0

    def stamp(self, key: str) -> Stamp | None:
        # Only a HEAD could tell: a round trip (~10-30 ms) and a billed request on every call.
        # Callers fall back to re-reading on a timer (AIAAS_ALIAS_TTL).
        return None

    def copy(self, source: str, dest: str, *, keep_etag: bool = False) -> None:
        # Server-side: no bytes pass through the function (multipart for big objects, in the
        # parts upload_file sends: the ETag, made of the parts' MD5s, is the source's).
        with self._errors(source):
            self.client.copy(
                {"Bucket": self.bucket, "Key": self._key(source)},
                self.bucket,
                self._key(dest),
                Config=_transfer(),
            )

    def delete(self, key: str, *, if_version: str | None = None) -> None:
        # A conditional delete needs s3:GetObject besides s3:DeleteObject.
        condition: dict[str, Any] = {"IfMatch": f'"{if_version}"'} if if_version else {}
        try:
            with self._errors(key):
                self.client.delete_object(Bucket=self.bucket, Key=self._key(key), **condition)
        except (ObjectExists, NotFound) as exc:
            if if_version is None:
                raise
            if isinstance(exc, NotFound) and came_on_retry(exc.__cause__):  # our first try deleted
                return  # it, and its answer was lost: the retry found it gone
            raise ObjectChanged(f"object {key!r} changed since it was read") from exc


def _condition(expect: str | None) -> dict[str, Any]:
    return {"IfNoneMatch": "*"} if expect is None else {"IfMatch": f'"{expect}"'}


def _transfer() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD
    )


def listing_start(after: str) -> str:
    """A StartAfter at or before `after` that any S3 takes: cut before a control character
    (moto's server failed a listing from `b\\x01.csv` with a 500) and to a key's 1,024 bytes;
    the caller leaves out the few keys between the two."""
    cut = next((i for i, c in enumerate(after) if ord(c) < 32 or ord(c) == 127), len(after))
    return after[:cut].encode()[:1024].decode(errors="ignore")


__all__ = ["S3Store", "make_s3_client"]  # make_s3_client: where callers have long found it
