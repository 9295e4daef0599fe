"""Versions whose weights live in ONNX external data files: published whole to a real S3 server
on loopback, served through the predict handler from disk and from memory, refused when a
file is missing or a stored chunk is damaged."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from bench.synthetic_transformer import VOCAB, SyntheticShape, write_model
from functions.runtime.cache import sha256_file
from functions.runtime.errors import BadRequest
from functions.runtime.manifest import ArtifactFile, ModelManifest
from functions.runtime.refs import version_prefix
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from infra.local.functions import load_handler
from tests import onnx_factory
from tests.functions.test_predict_events import load_event

MODEL = "big-text"
PART_MB = 5  # the smallest part S3 takes: the ~12 MB data file comes in three
DATA = "model.onnx.data"


def sample_tokens(rows: int = 2, length: int = 16, seed: int = 1) -> np.ndarray:
    """A small batch of token ids the synthetic models accept."""
    return np.random.default_rng(seed).integers(0, VOCAB, size=(rows, length), dtype=np.int64)


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    """A ~12 MB transformer-style model keeping its weights in `model.onnx.data`."""
    path = tmp_path / "export" / "model.onnx"
    write_model(path, SyntheticShape.of_bytes(12_000_000, width=64), external=True)
    return path


def manifest_of(path: Path, version: str = "1") -> ModelManifest:
    return onnx_factory.manifest_for(path, MODEL, version)


def stored_keys(store: S3Store, version: str = "1") -> list[str]:
    return list(store.list_keys(version_prefix(MODEL, version)))


def expected_logits(path: Path, tokens: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"tokens": tokens})[0]  # type: ignore[no-any-return]


def predict_event(tokens: np.ndarray) -> dict[str, Any]:
    event = copy.deepcopy(load_event("predict_simple"))
    path = f"/models/{MODEL}/predict"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["routeKey"] = event["requestContext"]["routeKey"] = f"POST {path}"
    event["rawQueryString"], event["queryStringParameters"] = "", None
    event["body"] = json.dumps({"inputs": tokens.tolist()})
    event["headers"]["content-length"] = str(len(event["body"]))
    return event


def serve(store: S3Store, cache: Path, load: str, tokens: np.ndarray) -> dict[str, Any]:
    env = {
        "AIAAS_MODEL": MODEL,
        "AIAAS_MODEL_SELECTOR": ":1",
        "AIAAS_STORE": store.uri,
        "AIAAS_CACHE_DIR": str(cache),
        "AIAAS_MODEL_LOAD": load,
        "AIAAS_TRANSFER_PART_MB": str(PART_MB),
        "AIAAS_TRANSFER_WORKERS": "3",
    }
    response: dict[str, Any] = load_handler("functions.predict.handler.handler", env)(
        predict_event(tokens), None
    )
    return response


def test_publish_lists_and_uploads_every_file(s3_store: S3Store, exported: Path) -> None:
    stored = Registry(s3_store).publish(manifest_of(exported), exported)
    data = exported.with_name(DATA)
    assert stored.files == (ArtifactFile(DATA, data.stat().st_size, sha256_file(data), "weights"),)
    assert Registry(s3_store).manifest(MODEL, "1") == stored  # the manifest lists it too
    assert sorted(stored_keys(s3_store)) == [
        f"{version_prefix(MODEL, '1')}/{name}" for name in ("manifest.json", "model.onnx", DATA)
    ]
    assert s3_store.get_bytes(f"{version_prefix(MODEL, '1')}/{DATA}") == data.read_bytes()


@pytest.mark.parametrize("load", ["disk", "memory"])
def test_served_through_the_handler(
    s3_store: S3Store, exported: Path, tmp_path: Path, load: str
) -> None:
    Registry(s3_store).publish(manifest_of(exported), exported)
    tokens = sample_tokens(3, 12)
    response = serve(s3_store, tmp_path / "cache", load, tokens)
    assert response["statusCode"] == HTTPStatus.OK, response["body"]
    doc = json.loads(response["body"])
    assert (doc["model"], doc["version"]) == (MODEL, "1")
    logits = np.asarray(doc["outputs"]["logits"], np.float32)
    np.testing.assert_allclose(logits, expected_logits(exported, tokens), rtol=1e-4, atol=1e-4)
    cached = list((tmp_path / "cache").glob("*/model.onnx"))
    assert len(cached) == (1 if load == "disk" else 0)  # memory: nothing written to disk


def test_missing_data_file_is_a_publish_error(s3_store: S3Store, exported: Path) -> None:
    manifest = manifest_of(exported)  # read while the data file is there
    exported.with_name(DATA).unlink()
    with pytest.raises(BadRequest) as caught:
        Registry(s3_store).publish(manifest, exported)
    assert f"external data file '{DATA}'" in caught.value.message
    assert caught.value.status == HTTPStatus.BAD_REQUEST
    assert stored_keys(s3_store) == []  # nothing half-published


def test_listed_file_with_a_wrong_sha256_is_a_publish_error(
    s3_store: S3Store, exported: Path
) -> None:
    data = exported.with_name(DATA)
    wrong = ArtifactFile(DATA, data.stat().st_size, "0" * 64, "weights")
    manifest = ModelManifest.from_dict(
        {**manifest_of(exported).to_dict(), "files": [wrong.__dict__]}
    )
    with pytest.raises(BadRequest) as caught:
        Registry(s3_store).publish(manifest, exported)
    assert f"{DATA} of {MODEL}:1 has sha256 {sha256_file(data)}" in caught.value.message
    assert f"its manifest says {'0' * 64}" in caught.value.message
    assert stored_keys(s3_store) == []  # hashed as sent, refused before any file was visible
    pending = s3_store.client.list_multipart_uploads(Bucket=s3_store.bucket)
    assert pending.get("Uploads", []) == []


def test_a_big_model_not_matching_its_manifest_leaves_nothing(
    s3_store: S3Store, exported: Path, tmp_path: Path
) -> None:
    """The model is hashed while its parts go up: a mismatch aborts the upload unseen."""
    manifest = manifest_of(exported)
    big = tmp_path / "other" / "model.onnx"  # a single-file model over the multipart threshold
    write_model(big, SyntheticShape.of_bytes(20_000_000, width=64), external=False)
    with pytest.raises(BadRequest, match=f"does not match the sha256 in the manifest of {MODEL}:1"):
        Registry(s3_store).publish(manifest, big)
    assert stored_keys(s3_store) == []
    pending = s3_store.client.list_multipart_uploads(Bucket=s3_store.bucket)
    assert pending.get("Uploads", []) == []


@pytest.fixture
def damaged(s3_store: S3Store, exported: Path) -> Iterator[S3Store]:
    """Published, then one byte flipped in the second 5 MB part of the stored data file."""
    Registry(s3_store).publish(manifest_of(exported), exported)
    key = f"{version_prefix(MODEL, '1')}/{DATA}"
    data = bytearray(s3_store.get_bytes(key))
    data[PART_MB * 1024 * 1024 + 4321] ^= 0x01
    s3_store.put_bytes(key, bytes(data))
    yield s3_store


@pytest.mark.parametrize("load", ["disk", "memory"])
def test_corrupted_chunk_is_refused_and_never_served(
    damaged: S3Store, tmp_path: Path, load: str
) -> None:
    for _ in range(2):  # every cold load checks again; nothing bad is kept
        response = serve(damaged, tmp_path / "cache", load, sample_tokens())
        assert response["statusCode"] == HTTPStatus.SERVICE_UNAVAILABLE, response["body"]
        assert json.loads(response["body"]) == {
            "error": f"model {MODEL}:1 failed its integrity check (its {DATA} is not the file "
            "its manifest lists) and is not served"
        }
        leftovers = list((tmp_path / "cache").iterdir()) if (tmp_path / "cache").exists() else []
        assert leftovers == []


def test_manifest_with_files_round_trips_and_old_ones_still_load(exported: Path) -> None:
    single = manifest_of(exported)
    assert "files" not in single.to_dict()  # single-file manifests are written as before
    listed = ModelManifest.from_json(
        json.dumps({**single.to_dict(), "files": [{"path": DATA, "size": 3, "sha256": "a" * 64}]})
    )
    assert listed.files == (ArtifactFile(DATA, 3, "a" * 64, "extra"),)
    assert ModelManifest.from_json(listed.to_json()) == listed
    for bad in ("../escape", "model.onnx", ""):
        with pytest.raises(BadRequest, match=r"files\[0\]\.path"):
            ModelManifest.from_dict(
                {**single.to_dict(), "files": [{"path": bad, "size": 1, "sha256": "a" * 64}]}
            )
