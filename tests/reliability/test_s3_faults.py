"""S3 answering as a failing S3 does, through an HTTP proxy on loopback (`s3faults.py`):
access denied, throttling, connections cut mid-download and mid-upload, ETags that lie.
Nothing is lost, nothing corrupt is served or published, and everything recovers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.runtime.errors import Conflict, StoreError
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from tests import onnx_factory
from tests.functions.test_predict_events import MODEL
from tests.reliability.s3faults import FaultyS3Proxy, proxied
from tests.reliability.test_faults import UNAVAILABLE, predict, publish, s3_service
from tests.s3server import MotoServer


@pytest.fixture
def bucket(s3_store: S3Store, tmp_path: Path) -> str:
    """A bucket with digits-mlp:1 published straight to moto, its production alias set."""
    publish(s3_store, tmp_path)
    Registry(s3_store).set_alias(MODEL, "production", "1", actor="ci")
    return s3_store.bucket


@pytest.fixture
def faults(
    bucket: str, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FaultyS3Proxy]:
    with proxied(moto_server.port, monkeypatch) as proxy:
        yield proxy


def cached_models(tmp_path: Path) -> list[str]:
    folder = tmp_path / "cache"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_access_denied_is_503_and_recovers_when_granted(
    bucket: str, tmp_path: Path, faults: FaultyS3Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    faults.deny = "/model.onnx"
    service = s3_service(bucket, tmp_path)
    assert predict(service) == (503, UNAVAILABLE)
    assert "S3 refused access" in caplog.text
    assert cached_models(tmp_path) == []
    faults.clear()
    status, body = predict(service)
    assert (status, body["version"]) == (200, "1")


def test_throttling_is_retried_and_served(
    bucket: str, tmp_path: Path, faults: FaultyS3Proxy
) -> None:
    faults.slowdown = 2  # fewer than the tries: botocore's retries absorb them
    service = s3_service(bucket, tmp_path)
    assert predict(service)[0] == 200
    assert faults.slowdown == 0


def test_throttling_past_the_retries_is_503_then_recovers(
    bucket: str, tmp_path: Path, faults: FaultyS3Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    faults.slowdown = 1000
    service = s3_service(bucket, tmp_path)
    assert predict(service) == (503, UNAVAILABLE)
    assert "S3 is throttling requests" in caplog.text
    faults.clear()
    assert predict(service)[0] == 200


def test_a_download_cut_in_the_middle_is_never_served_or_cached(
    bucket: str, tmp_path: Path, faults: FaultyS3Proxy
) -> None:
    faults.cut_download, faults.cut_after = "/model.onnx", 0  # no resume gets a byte further
    service = s3_service(bucket, tmp_path)
    assert predict(service) == (503, UNAVAILABLE)
    assert [name for name in cached_models(tmp_path) if not name.startswith(".")] == []
    faults.clear()
    status, body = predict(service)
    assert (status, body["version"]) == (200, "1")
    assert len([n for n in cached_models(tmp_path) if n.endswith(".onnx")]) == 1


def test_a_download_cut_halfway_every_time_is_resumed_verified_and_served(
    bucket: str, tmp_path: Path, faults: FaultyS3Proxy
) -> None:
    faults.cut_download = "/model.onnx"  # every GET: half its body, resumes too
    status, body = predict(s3_service(bucket, tmp_path))
    assert (status, body["version"]) == (200, "1")  # its sha256 checked as ever (transfer.py)
    assert len([n for n in cached_models(tmp_path) if n.endswith(".onnx")]) == 1


def test_an_upload_cut_in_the_middle_publishes_nothing_and_can_be_retried(
    bucket: str, tmp_path: Path, faults: FaultyS3Proxy
) -> None:
    store = S3Store(bucket, "registry")  # its client goes through the proxy
    path = onnx_factory.linear_classifier(tmp_path / "m2.onnx", features=64, classes=10, seed=2)
    manifest = onnx_factory.manifest_for(path, MODEL, "2")
    faults.cut_upload = "/versions/2/model.onnx"
    with pytest.raises(StoreError):
        Registry(store).publish(manifest, path)
    assert Registry(store).versions(MODEL) == ["1"]  # no manifest: version 2 does not exist
    faults.clear()
    Registry(store).publish(manifest, path)
    assert Registry(store).versions(MODEL) == ["1", "2"]


def test_lying_etags_never_overwrite_an_alias_blindly(
    bucket: str, tmp_path: Path, faults: FaultyS3Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compare-and-swap with an ETag no object has: every conditional write is refused, so the
    promotion fails loudly (409) and the alias keeps its record, history included."""
    from functions.runtime import alias_cas

    monkeypatch.setattr(alias_cas, "ALIAS_WRITE_TRIES", 3)
    store = S3Store(bucket, "registry")
    registry = Registry(store)
    publish(store, tmp_path, version="2", seed=2)
    faults.lie_etags = True
    with pytest.raises(Conflict, match="kept changing while it was being set"):
        registry.set_alias(MODEL, "production", "2", actor="ops")
    faults.clear()
    record = registry.alias_record(MODEL, "production")
    assert record is not None and (record["version"], record["updated_by"]) == ("1", "ci")
    assert registry.set_alias(MODEL, "production", "2", actor="ops")["version"] == "2"
