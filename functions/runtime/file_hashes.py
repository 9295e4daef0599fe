"""The sha256 of a file or stream, read in bounded chunks: how a model's files are checked
against their manifest (the cache, publish, pull, introspection)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import IO

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
