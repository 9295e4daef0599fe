"""Publishing real ONNX models into a registry, for tests that need versions to exist."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

import pytest

from functions.runtime.errors import AiaasError
from functions.runtime.manifest import ModelManifest
from functions.runtime.registry import Registry, model_key
from functions.runtime.store import LocalStore, ObjectStore
from tests import onnx_factory


def publish_linear(
    registry: Registry,
    workdir: Path,
    name: str,
    version: str,
    *,
    seed: int = 0,
    labels: tuple[str, ...] = ("a", "b", "c"),
) -> ModelManifest:
    """Publish a linear classifier (weights from `seed`) as `name:version`."""
    path = onnx_factory.linear_classifier(workdir / f"{name}-{version}-{seed}.onnx", seed=seed)
    manifest = onnx_factory.manifest_for(path, name, version, labels=labels)
    return registry.publish(manifest, path)


def flip_stored_model_byte(store: ObjectStore, name: str, version: str, offset: int = -20) -> None:
    """Damage the stored model.onnx of `name:version` in place (one bit of one byte)."""
    key = model_key(name, version)
    data = bytearray(store.get_bytes(key))
    data[offset] ^= 0x01
    store.put_bytes(key, bytes(data))


def publish_three(registry: Registry, workdir: Path, name: str = "m") -> Registry:
    """Versions 1, 2 and 3 of `name` (different weights), with `production` at 1."""
    for version in ("1", "2", "3"):
        publish_linear(registry, workdir, name, version, seed=int(version))
    registry.set_alias(name, "production", "1", actor="ci")
    return registry


def error_of(call: object, *args: object, **kwargs: object) -> tuple[HTTPStatus, str]:
    """The status and message of the AiaasError that `call(*args, **kwargs)` raises."""
    assert callable(call)
    with pytest.raises(AiaasError) as caught:
        call(*args, **kwargs)
    return caught.value.status, caught.value.message


def published_cli(workdir: Path, model: Path, name: str = "m") -> LocalStore:
    """A directory store under `workdir` holding `model` as `name:1`, published as users do
    (`aiaas publish`, the CLI's own checks and probe)."""
    from infra.cli.main import main

    store = LocalStore(workdir / "store")
    assert main(["--store", store.uri, "publish", str(model), "--name", name]) == 0
    return store
