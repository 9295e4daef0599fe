"""Publishing real ONNX models into a registry, for tests that need versions to exist."""

from __future__ import annotations

import uuid
from http import HTTPStatus
from pathlib import Path

import pytest

from functions.runtime.errors import AiaasError
from functions.runtime.manifest import ModelManifest
from functions.runtime.registry import Registry, model_key
from functions.runtime.s3client import make_s3_client
from functions.runtime.s3store import S3Store
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


def module_store(request: pytest.FixtureRequest, work: Path) -> ObjectStore:
    """A store of its own for a module-scoped fixture parametrized as the `store` fixture is
    (`request.param`): a directory under `work`, or a fresh bucket on moto's S3 server."""
    if request.param == "local":
        return LocalStore(work / "store")
    request.getfixturevalue("moto_server")
    bucket = f"aiaas-test-{uuid.uuid4().hex[:12]}"
    make_s3_client().create_bucket(Bucket=bucket)
    return S3Store(bucket, "registry")


def three_once(request: pytest.FixtureRequest, factory: pytest.TempPathFactory) -> Registry:
    """`publish_three` into a `module_store`: for a module-scoped fixture shared by the tests
    whose call is refused, which writes nothing (each checks that the alias it was refused on
    is as it was)."""
    work = factory.mktemp("three")
    return publish_three(Registry(module_store(request, work)), work)


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
