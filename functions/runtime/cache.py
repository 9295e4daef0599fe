"""The per-container artifact cache: each model file is fetched once and verified before use.

Files are content-addressed (`<cache>/<sha256>.onnx`): two loads racing in one container or in
two processes both download to private temp files and rename onto the same final name, so
neither can see a partial file. A file whose sha256 differs from its manifest is deleted and
never served.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO

from functions.runtime.errors import IntegrityError, ModelUnavailable, NotFound, StoreError
from functions.runtime.manifest import ModelManifest
from functions.runtime.refs import model_key
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import ObjectStore

HASH_CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return sha256_stream(handle)


def sha256_stream(handle: IO[bytes]) -> str:
    """The hex sha256 of what `handle` reads to its end, in bounded chunks."""
    digest = hashlib.sha256()
    while chunk := handle.read(HASH_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


class ArtifactCache:
    """Fetches model files into a local directory, verified against their manifests."""

    def __init__(self, store: ObjectStore, directory: Path | None = None) -> None:
        self.store = store
        self.directory = directory or RuntimeSettings.from_env().cache_dir

    def fetch(self, manifest: ModelManifest) -> Path:
        """A local path of the verified model file for `manifest`."""
        expected = manifest.file.sha256
        final = self.directory / f"{expected}.onnx"
        # A damaged entry is not deleted first: the verified download replaces it atomically, and
        # an unlink could remove the good file another process has just renamed into place.
        if final.is_file() and sha256_file(final) == expected:
            return final
        return self._download(manifest, final)

    def _download(self, manifest: ModelManifest, final: Path) -> Path:
        ref = f"{manifest.name}:{manifest.version}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=self.directory, prefix=".part-")
            os.close(fd)
        except OSError as exc:
            raise StoreError(f"cannot write the model cache {self.directory}: {exc}") from exc
        tmp = Path(tmp_name)
        try:
            try:
                self.store.download_file(model_key(manifest.name, manifest.version), tmp)
            except NotFound:
                raise ModelUnavailable(
                    f"{ref}: the manifest exists but the model file is missing from the store",
                    public_message=f"model {ref} is incomplete in the registry and is not served",
                ) from None
            actual = sha256_file(tmp)
            if actual != manifest.file.sha256:
                raise IntegrityError(
                    f"{ref}: model file sha256 {actual} does not match the manifest's "
                    f"{manifest.file.sha256}; refusing to serve it",
                    public_message=f"model {ref} failed its integrity check and is not served",
                )
            tmp.replace(final)
            return final
        except OSError as exc:
            reason = "cache disk is full" if exc.errno == errno.ENOSPC else str(exc)
            raise StoreError(f"{ref}: cannot cache model file: {reason}") from exc
        finally:
            tmp.unlink(missing_ok=True)
