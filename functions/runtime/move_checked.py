"""An alias moves onto a version only once that version's files are the ones its manifest
lists: each file's size (one HEAD each: a cheap first check), then its sha256, by the same
verified fetch serving uses (`transfer.fetch_verified`), streamed through a hash, never stored.

Until 2026-12-07 `aiaas promote`, the control plane's alias PUT and a rollout's steps moved an
alias onto a version whose model.onnx had been changed in the store since it was published
(exit 0): servers holding a verified copy served on, and every fresh one (a cold start, a
restart) answered the alias's requests 503. Now the move is refused, a 409 naming the file and
both digests, and the alias stays where it was.

Checked: each version a move newly gives callers' requests (one the alias does not already
send requests to as its main version or canary), every file its manifest lists. Reading the
files costs their download (a 200 MB model: about a second on a local store, its transfer
time on S3): docs/registry.md. A rollback reads sizes only (`sizes_match`): it goes back to
a version the alias served, and an emergency must not wait for a multi-gigabyte download; a
server still verifies every byte as it loads it, so a changed file is refused there, never
served.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from functions.runtime.errors import AiaasError, Conflict, IntegrityError, NotFound
from functions.runtime.manifest import MODEL_FILE, ModelManifest
from functions.runtime.refs import version_prefix
from functions.runtime.settings import TransferSettings
from functions.runtime.transfer import CHANGED, fetch_verified

if TYPE_CHECKING:
    from functions.runtime.aliases import AliasTarget
    from functions.runtime.registry import Registry


class _Hashed:
    """A sink that keeps each part only until `fetch_into` hands it on, in order, to the hash:
    what a file costs in memory is the parts in flight, not the file."""

    def __init__(self) -> None:
        self._chunks: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def write_at(self, offset: int, data: bytes) -> None:
        with self._lock:
            self._chunks[offset] = bytes(data)

    def read_at(self, start: int, end: int) -> bytes:
        with self._lock:
            offsets = sorted(o for o in self._chunks if start <= o < end)
            return b"".join(self._chunks.pop(o) for o in offsets)


def files_of(manifest: ModelManifest) -> list[tuple[str, int, str]]:
    """(path in the version's folder, size, sha256) of every file `manifest` lists."""
    listed = [(MODEL_FILE, manifest.file.size, manifest.file.sha256)]
    return listed + [(f.path, f.size, f.sha256) for f in manifest.files]


def _refused(manifest: ModelManifest, alias: str, rel: str, why: str) -> Conflict:
    name, version = manifest.name, manifest.version
    text = (
        f"{name}@{alias} is not moved to version {version}: {name}:{version}'s {rel} is not "
        f"the file its manifest lists ({why}); {CHANGED}; {alias} stays where it is"
    )
    return Conflict(text, public_message=text)


def sizes_match(registry: Registry, manifest: ModelManifest, alias: str) -> None:
    """Each listed file is there at its listed size (a HEAD each), else the refusal."""
    prefix = version_prefix(manifest.name, manifest.version)
    for rel, size, _ in files_of(manifest):
        try:
            found = registry.store.head(f"{prefix}/{rel}").size
        except NotFound:
            raise _refused(manifest, alias, rel, "it is missing from the store") from None
        if found != size:
            raise _refused(manifest, alias, rel, f"{found} bytes, the manifest lists {size}")


def files_match(registry: Registry, manifest: ModelManifest, alias: str) -> None:
    """`sizes_match`, then each file's sha256 against its manifest's, else the refusal."""
    sizes_match(registry, manifest, alias)
    prefix = version_prefix(manifest.name, manifest.version)
    # At most 8 parts of 16 MB held at once (128 MB; the control plane's function has 512 MB):
    # on S3 (moto) a 200 MB file in 3.6 s, as fast as 16 parts; parts of 8 MB took 6.6 s.
    settings = replace(TransferSettings(), workers=8)
    for rel, size, sha in files_of(manifest):
        try:
            fetch_verified(registry.store, f"{prefix}/{rel}", size, sha, _Hashed(), settings)
        except IntegrityError as exc:
            actual = _digest_in(exc.message)
            why = f"sha256 {actual}, the manifest lists {sha}" if actual else exc.message
            raise _refused(manifest, alias, rel, why) from None


def _digest_in(message: str) -> str | None:
    """The stored file's sha256 as `fetch_verified`'s refusal gives it, if it does."""
    marker = ": sha256 "
    at = message.find(marker)
    return None if at < 0 else message[at + len(marker) :].split(" ", 1)[0]


def newly_answering(
    registry: Registry, name: str, alias: str, versions: Iterable[str]
) -> list[str]:
    """Of `versions`, those `alias` does not send callers' requests to now (main or canary):
    a version it already serves was checked as it was moved onto."""
    from functions.runtime.aliases import AliasTarget

    serving: set[str] = set()
    with contextlib.suppress(AiaasError):  # a corrupt record is replaced: it serves nothing
        record = registry.alias_record(name, alias)
        if record is not None:
            now = AliasTarget.of(record)
            serving = {now.version, *((now.canary,) if now.canary else ())}
    return [v for v in dict.fromkeys(versions) if v not in serving]


def check_move(registry: Registry, name: str, alias: str, versions: Iterable[str]) -> None:
    """Refuse a move giving requests to a version whose files are not its manifest's."""
    for version in newly_answering(registry, name, alias, versions):
        files_match(registry, registry.manifest(name, version), alias)


def sizes_checked(
    registry: Registry, name: str, alias: str, choose: Callable[[bytes | None], AliasTarget]
) -> Callable[[bytes | None], AliasTarget]:
    """`choose` (a rollback's), its target's answering versions' file sizes checked (HEADs)."""

    def checked(raw: bytes | None) -> AliasTarget:
        target = choose(raw)
        for version in (target.version, *((target.canary,) if target.canary else ())):
            sizes_match(registry, registry.manifest(name, version), alias)
        return target

    return checked
