"""A version with external data is cached as one folder, renamed into place whole. A worker
whose download finished after a twin's must keep the twin's verified folder, which the twin may
be loading: it was removed to swap its own in, and the twin's onnxruntime load failed ("External
data path does not exist"; 4 of 15 cold starts of three processes). A damaged folder is still
replaced, and nothing of it is left."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import onnxruntime as ort
import pytest

from functions.runtime.cache import ArtifactCache, version_digest
from functions.runtime.manifest import ModelManifest
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.infra.test_pull_full_disk import publish_external


@pytest.fixture
def manifest(tmp_path: Path) -> tuple[Registry, ModelManifest]:
    registry = Registry(LocalStore(tmp_path / "store"))
    publish_external(registry.store, tmp_path)
    found = registry.manifest("ext", "1")
    assert found.weight_files  # the folder path of the cache
    return registry, found


def test_a_twin_s_folder_that_landed_during_our_download_is_kept(
    tmp_path: Path, manifest: tuple[Registry, ModelManifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, version = manifest
    ours, twin = (ArtifactCache(registry.store, tmp_path / "cache") for _ in range(2))
    # Twins now take turns (cache_lock.py); this one does not (older code sharing the cache,
    # a file system without flock): it would wait for ours, in ours' own thread.
    monkeypatch.setattr(twin, "_one_download", lambda *_: contextlib.nullcontext(False))
    real, landed = ArtifactCache._download, []

    def download(self: ArtifactCache, *args: Any) -> None:
        real(self, *args)
        if self is ours and args[1] == version.weight_files[-1].path:  # our last file
            landed.append(twin.fetch(version))  # the twin renamed its copy in first ...
            landed.append(os.stat(landed[0].parent).st_ino)

    monkeypatch.setattr(ArtifactCache, "_download", download)
    path = ours.fetch(version)
    assert path == landed[0]
    assert os.stat(path.parent).st_ino == landed[1]  # ... and it is the one kept, whole
    ort.InferenceSession(str(landed[0]), providers=["CPUExecutionProvider"])  # loads
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [version_digest(version)]


def test_a_damaged_folder_is_replaced_and_leaves_nothing(
    tmp_path: Path, manifest: tuple[Registry, ModelManifest]
) -> None:
    registry, version = manifest
    cache = ArtifactCache(registry.store, tmp_path / "cache")
    path = cache.fetch(version)
    data = path.parent / version.weight_files[0].path
    data.write_bytes(b"damaged")
    assert cache.fetch(version) == path
    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [version_digest(version)]
