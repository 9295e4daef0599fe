"""The verified artifact cache: fetched once, sha256-checked, safe when loads race."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from http import HTTPStatus
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from functions.runtime.cache import ArtifactCache, sha256_file
from functions.runtime.errors import IntegrityError, ModelUnavailable
from functions.runtime.registry import Registry, model_key
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import LocalStore, ObjectStore
from tests.publishing import flip_stored_model_byte, publish_linear

REPO = Path(__file__).resolve().parents[2]


def cache_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_fetch_downloads_once_and_verifies(
    registry: Registry, tmp_path: Path, cache_dir: Path, mocker: MockerFixture
) -> None:
    manifest = publish_linear(registry, tmp_path, "m", "1")
    download = mocker.spy(registry.store, "open_read")
    cache = ArtifactCache(registry.store, cache_dir)
    path = cache.fetch(manifest)
    assert path == cache_dir / f"{manifest.file.sha256}.onnx"
    assert sha256_file(path) == manifest.file.sha256
    fetched = download.call_count
    assert fetched >= 1
    assert cache.fetch(manifest) == path
    assert download.call_count == fetched
    assert cache_files(cache_dir) == [path.name]


def test_corrupted_artifact_is_refused_and_never_cached(
    registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    manifest = publish_linear(registry, tmp_path, "m", "1")
    flip_stored_model_byte(registry.store, "m", "1")
    cache = ArtifactCache(registry.store, cache_dir)
    for _ in range(2):  # every attempt checks again; nothing bad is kept
        with pytest.raises(IntegrityError) as caught:
            cache.fetch(manifest)
        assert caught.value.status == HTTPStatus.SERVICE_UNAVAILABLE
        assert f"does not match the manifest's {manifest.file.sha256}" in caught.value.message
        # ... and what to do about it (it said only "refusing to serve it": hunt_journey24 4)
        assert caught.value.message.endswith(
            "(the object was changed in the store after it was published: put the published "
            "file back (a versioned bucket keeps it), or publish the model again as a new "
            "version); refusing to use it"
        )
        assert (
            caught.value.public_message
            == "model m:1 failed its integrity check (its model.onnx is not the file its manifest lists) and is not served"
        )
        assert cache_files(cache_dir) == []


def test_damaged_cache_entry_is_fetched_again(
    registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    manifest = publish_linear(registry, tmp_path, "m", "1")
    cache = ArtifactCache(registry.store, cache_dir)
    path = cache.fetch(manifest)
    damaged = bytearray(path.read_bytes())
    damaged[10] ^= 0xFF
    path.write_bytes(bytes(damaged))
    assert cache.fetch(manifest) == path
    assert sha256_file(path) == manifest.file.sha256
    path.write_bytes(b"truncated")
    assert sha256_file(cache.fetch(manifest)) == manifest.file.sha256


def test_missing_model_file_is_unavailable(
    registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    manifest = publish_linear(registry, tmp_path, "m", "1")
    registry.store.delete(model_key("m", "1"))
    with pytest.raises(ModelUnavailable) as caught:
        ArtifactCache(registry.store, cache_dir).fetch(manifest)
    assert caught.value.status == HTTPStatus.SERVICE_UNAVAILABLE
    assert "model file is missing from the store" in caught.value.message
    assert (
        caught.value.public_message
        == "model m:1 is incomplete in the registry (its model.onnx is missing) and is not served"
    )


def test_a_manifest_declaring_more_bytes_than_memory_is_unavailable(
    registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    """A size edited in the store to 10^18 was an OSError from the memory buffer: a 502."""
    manifest = publish_linear(registry, tmp_path, "m", "1")
    huge = dataclasses.replace(manifest, file=dataclasses.replace(manifest.file, size=10**18))
    with pytest.raises(ModelUnavailable) as caught:
        ArtifactCache(registry.store, cache_dir).fetch_into_memory(huge)
    assert caught.value.status == HTTPStatus.SERVICE_UNAVAILABLE
    assert caught.value.message.startswith(
        "m:1: its manifest gives model.onnx as 1000000000000000000 bytes, more memory than "
        "this process can take ("
    )
    assert caught.value.public_message == "model m:1 cannot be loaded"


def test_threads_racing_a_cold_fetch_all_get_one_verified_file(
    registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    manifest = publish_linear(registry, tmp_path, "m", "1")
    cache = ArtifactCache(registry.store, cache_dir)
    barrier = threading.Barrier(6)
    paths: list[Path] = []

    def fetch() -> None:
        barrier.wait()
        paths.append(cache.fetch(manifest))

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(paths) == 6 and len(set(paths)) == 1
    assert cache_files(cache_dir) == [f"{manifest.file.sha256}.onnx"]
    assert sha256_file(paths[0]) == manifest.file.sha256


RACER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from functions.runtime.cache import ArtifactCache, sha256_file
    from functions.runtime.registry import Registry
    from functions.runtime.store import open_store

    uri, cache_dir, go, ready = sys.argv[1:5]
    registry = Registry(open_store(uri))
    manifest = registry.resolve("m:1")
    Path(ready).touch()
    while not Path(go).exists():
        time.sleep(0.002)
    path = ArtifactCache(registry.store, Path(cache_dir)).fetch(manifest)
    print(json.dumps({"path": str(path), "sha256": sha256_file(path)}))
    """
)


def test_two_processes_racing_on_one_cache_dir(
    store: ObjectStore, registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    manifest = publish_linear(registry, tmp_path, "m", "1")
    go = tmp_path / "go"
    env = os.environ | {"PYTHONPATH": str(REPO)}
    racers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                RACER,
                store.uri,
                str(cache_dir),
                str(go),
                str(tmp_path / f"r{i}"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for i in range(2)
    ]
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"r{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline, "racers did not start"
        assert all(r.poll() is None for r in racers), [r.communicate() for r in racers]
        time.sleep(0.01)
    go.touch()  # both processes are ready: release them at once
    results = []
    for racer in racers:
        out, err = racer.communicate(timeout=30)
        assert racer.returncode == 0, err
        results.append(json.loads(out))
    expected = str(cache_dir / f"{manifest.file.sha256}.onnx")
    assert results == [{"path": expected, "sha256": manifest.file.sha256}] * 2
    assert cache_files(cache_dir) == [f"{manifest.file.sha256}.onnx"]


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def cache_dir(**env: str) -> Path:
        return RuntimeSettings.from_env(env).cache_dir

    assert cache_dir(AIAAS_CACHE_DIR=str(tmp_path / "c")) == tmp_path / "c"
    assert cache_dir(AWS_LAMBDA_FUNCTION_NAME="predict-iris") == Path("/tmp/aiaas-cache")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "aiaas"


def test_a_full_cache_disk_says_what_the_margin_adds(tmp_path: Path, mocker: MockerFixture) -> None:
    """A 207-byte model on a full disk read "a model needs 65 MB": the operator could not tell
    where 65 came from, nor that freeing 1 MB would not do."""
    usage = mocker.patch("functions.runtime.cache.shutil.disk_usage")
    usage.return_value = type("Usage", (), {"free": 3 * 1024 * 1024})()
    store = LocalStore(tmp_path / "store")  # not read: the disk's room is all that is asked
    cache = ArtifactCache(store, tmp_path / "cache", RuntimeSettings.from_env({}).transfer)
    assert cache._disk_problem(207) == (
        "full",
        "its disk has 3 MB free and a model needs 65 MB (1 MB of files and 64 MB kept free)",
    )
