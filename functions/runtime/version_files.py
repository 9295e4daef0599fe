"""The files of a model version: `model.onnx`, `manifest.json`, and the others the manifest lists.

Each other file (ONNX external data, tokenizer, explain background, card, ...) is listed in
the manifest's `files` with its path, size, sha256 and role, so serving fetches and verifies
exactly what publishing wrote. Paths stay inside the version's folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from functions.runtime import manifest_fields as fields
from functions.runtime.errors import ManifestError

MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
NAME_MAX = 255  # bytes of one file name on Linux file systems (the cache is one)
# Written into a version's folder after publishing: `aiaas baseline` (drift) and the explain
# background. Named here, where serving finds them without importing those features.
BASELINE_FILE = "drift_baseline.json"
BACKGROUND_FILE = "background.json"

# What a file beside the model is for: "weights" are ONNX external data the model loads (fetched
# and verified with it); "extra" files (tokenizer, explain background, card) are read by others.
FILE_ROLES = ("weights", "extra")


@dataclass(frozen=True)
class ArtifactFile:
    """A file of a version other than the model file, vouched for by size and sha256."""

    path: str  # relative to the version's folder, as the model's external data names it
    size: int
    sha256: str
    role: str = "extra"


def artifact_path(rel: str) -> str:
    """`rel` if it can name a file in a version's folder beside the model, else ValueError."""
    parts = rel.split("/")
    if (
        any(p in ("", ".", "..") for p in parts)
        or "\\" in rel
        or any(ord(c) < 0x20 or c == "\x7f" for c in rel)  # NUL: no file system takes it
        or any(len(p.encode()) > NAME_MAX for p in parts)
        or rel in (MODEL_FILE, MANIFEST_FILE)
    ):
        raise ValueError(f"invalid file name {rel!r} in a version's folder")
    return rel


def parse_files(items: list[Any]) -> tuple[ArtifactFile, ...]:
    """The manifest's `files` list, each entry checked; a ManifestError names the bad one."""
    files = tuple(_parse_file(item, f"files[{i}]") for i, item in enumerate(items))
    if len({f.path for f in files}) != len(files):
        raise ManifestError("manifest field 'files' lists a file twice")
    return files


def _parse_file(item: object, where: str) -> ArtifactFile:
    entry = fields.mapping(item, where)
    try:
        path = artifact_path(fields.get(entry, "path", str, where))
    except ValueError as exc:
        raise ManifestError(f"manifest field '{where}.path': {exc}") from None
    sha = fields.sha256(fields.get(entry, "sha256", str, where), f"{where}.sha256")
    size = fields.get(entry, "size", int, where)
    if size < 0:
        raise ManifestError(f"manifest field '{where}.size' must not be negative")
    role = fields.choice(
        fields.get(entry, "role", str, where, "extra"), FILE_ROLES, f"{where}.role"
    )
    return ArtifactFile(path=path, size=size, sha256=sha, role=role)
