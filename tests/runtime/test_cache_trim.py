"""The model cache is bounded: versions no process holds go, least recently used first.

It never removed an entry: a long-lived `aiaas serve` or a warm function filled its disk with
every version it had loaded, until a new one no longer fitted and loaded from memory (~3x its
weights) and downloaded again at every start (four 48 MB versions on a 250 MB cache disk with
AIAAS_MAX_VERSIONS=2: the third held in memory beside two cached versions nothing used). Now a
version short of room (or past AIAAS_CACHE_MAX_MB) removes the least recently used entries that
no process holds and that no other process used within a minute. Real models, a real
LocalStore, real onnxruntime sessions; the full disk is one whose free space is its capacity
less what the cache holds.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bench.synthetic_transformer import SyntheticShape, write_model
from functions.runtime.cache import DISK_MARGIN, ArtifactCache, version_digest
from functions.runtime.manifest import ModelManifest
from functions.runtime.model import LoadedModel
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import LocalStore
from tests import onnx_factory

GRACE_S = 60  # cache_trim.GRACE_S
TOKENS = {"tokens": np.array([[1, 2, 3, 4]], dtype=np.int64)}


def publish(
    registry: Registry, root: Path, version: str, size: int, external: bool
) -> ModelManifest:
    """`m:<version>`, a synthetic transformer of ~`size` bytes of weights (its own values)."""
    path = root / f"export-{version}" / "model.onnx"
    write_model(path, SyntheticShape.of_bytes(size, width=64), external=external, seed=int(version))
    return registry.publish(onnx_factory.manifest_for(path, "m", version), path)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(LocalStore(tmp_path / "store"))


def settings(cache: Path, **env: str) -> RuntimeSettings:
    return RuntimeSettings.from_env({"AIAAS_CACHE_DIR": str(cache), **env})


def entries(cache: Path) -> set[str]:
    return {p.name for p in cache.iterdir() if not p.name.startswith(".")}


def entry(cache: ArtifactCache, manifest: ModelManifest) -> Path:
    """`manifest`'s entry in the cache: its file, or the folder of its files."""
    if manifest.weight_files:
        return cache.directory / version_digest(manifest)
    return cache.directory / f"{manifest.file.sha256}.onnx"


def aged(cache: ArtifactCache, manifest: ModelManifest, seconds: float) -> None:
    """Mark `manifest`'s entry last used `seconds` ago."""
    past = time.time() - seconds
    os.utime(entry(cache, manifest), (past, past))


def run(model: LoadedModel) -> list[np.ndarray]:
    return model.session.run(None, TOKENS)


def test_a_bound_of_two_versions_drops_the_first_when_the_pool_drops_it(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """AIAAS_CACHE_MAX_MB=2 holds two ~0.8 MB versions: loading the third removes the first
    once the pool evicts it (AIAAS_MAX_VERSIONS=2), within the grace window (this process
    let it go), and says so."""
    versions = [publish(registry, tmp_path, v, 800_000, external=False) for v in "123"]
    cache_dir = tmp_path / "cache"
    env = {"AIAAS_CACHE_MAX_MB": "2", "AIAAS_MAX_VERSIONS": "2"}
    pool = ModelPool(registry, settings=settings(cache_dir, **env))
    with caplog.at_level(logging.INFO, "aiaas.runtime"):
        for manifest in versions:
            pool.load(manifest)
    assert entries(cache_dir) == {entry(pool.cache, v).name for v in versions[1:]}
    removed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("removed")]
    assert removed == [
        f"removed {entry(pool.cache, versions[0]).name} from the model cache {cache_dir} (0.8 MB, "
        "least recently used): the cache is past AIAAS_CACHE_MAX_MB (2 MB)"
    ]


def test_an_entry_a_process_holds_stays_and_the_next_least_recent_goes(
    registry: Registry, tmp_path: Path
) -> None:
    """v1 is the least recently used, but another worker holds it (loaded): v2 goes."""
    v1, v2, v3 = (publish(registry, tmp_path, v, 800_000, external=False) for v in "123")
    cache_dir, env = tmp_path / "cache", settings(tmp_path / "cache", AIAAS_CACHE_MAX_MB="2")
    worker, other = (ArtifactCache(registry.store, cache_dir, env.transfer) for _ in range(2))
    other.fetch(v1)  # loaded there, never released
    other.fetch(v2)
    other.release(v2)  # its pool dropped it
    aged(other, v1, 300)
    aged(other, v2, 200)
    worker.fetch(v3)
    assert entries(cache_dir) == {entry(worker, v1).name, entry(worker, v3).name}


def test_another_process_s_entry_used_within_the_grace_window_stays(
    registry: Registry, tmp_path: Path
) -> None:
    """A worker may be between another's rename and its own lock: an entry used within
    GRACE_S by another process stays, however far past the bound; once older, it goes."""
    v1, v2, v3 = (publish(registry, tmp_path, v, 800_000, external=False) for v in "123")
    cache_dir, env = tmp_path / "cache", settings(tmp_path / "cache", AIAAS_CACHE_MAX_MB="2")
    worker, other = (ArtifactCache(registry.store, cache_dir, env.transfer) for _ in range(2))
    for manifest in (v1, v2):
        other.fetch(manifest)
        other.release(manifest)
    worker.fetch(v3)
    assert len(entries(cache_dir)) == 3  # both used just now
    aged(other, v1, GRACE_S + 1)
    worker.fetch(v3)
    assert entries(cache_dir) == {entry(worker, v2).name, entry(worker, v3).name}


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The cache's disk: room for the margin and two versions of ~2 MB; its free space is
    that less what the cache holds (its other paths: the real disk)."""
    cache_dir, real = tmp_path / "cache", shutil.disk_usage
    capacity = DISK_MARGIN + 5_000_000

    def usage(path: str | os.PathLike[str]) -> object:
        if Path(path) != cache_dir:
            return real(path)
        used = sum(f.stat().st_size for f in cache_dir.rglob("*") if f.is_file())
        return shutil._ntuple_diskusage(capacity, used, capacity - used)  # type: ignore[attr-defined]

    monkeypatch.setattr(shutil, "disk_usage", usage)
    yield cache_dir


def test_a_full_disk_drops_an_evicted_external_data_folder_and_its_session_still_answers(
    registry: Registry, tmp_path: Path, small_disk: Path
) -> None:
    """The hunt's case: the disk holds two versions' folders and the pool evicts v1 for v3
    (AIAAS_MAX_VERSIONS=2); v1's folder makes room, and v3 loads from disk, not memory. v1's
    session, created from the removed folder (onnxruntime maps its data file), still answers."""
    v1, v2, v3 = (publish(registry, tmp_path, v, 2_000_000, external=True) for v in "123")
    pool = ModelPool(registry, settings=settings(small_disk, AIAAS_MAX_VERSIONS="2"))
    first = pool.load(v1)
    answers = run(first)
    pool.load(v2)
    third = pool.load(v3)
    assert third.path == entry(pool.cache, v3) / "model.onnx"  # on disk: not "<memory>"
    assert not entry(pool.cache, v1).exists()
    assert entries(small_disk) == {entry(pool.cache, v2).name, entry(pool.cache, v3).name}
    for got, expected in zip(run(first), answers, strict=True):
        np.testing.assert_array_equal(got, expected)
