"""Models that cannot be served: 503 without internals, 404 for unknown ones, recovery, S3.

Each broken state is made for real in a store (a flipped byte, a deleted file, a manifest that
lies, an S3 endpoint nobody listens on), never by patching the runtime.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache, sha256_file
from functions.runtime.errors import BadRequest, ModelUnavailable
from functions.runtime.manifest import ModelFile, TensorSpec
from functions.runtime.pool import ModelPool
from functions.runtime.refs import manifest_key, model_key
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_events import (
    MODEL,
    body_of,
    digits_service,
    http_event,
    publish_digits,
)
from tests.s3server import free_port

ROW = json.dumps({"inputs": [[0.5] * 64]})
INFER = json.dumps(
    {"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP32", "data": [0.5] * 64}]}
)


def every_model_route(service: PredictService, name: str = MODEL) -> dict[str, Mapping[str, Any]]:
    calls = {
        "predict": ("POST", f"/models/{name}/predict", ROW),
        "infer": ("POST", f"/v2/models/{name}/infer", INFER),
        "metadata": ("GET", f"/v2/models/{name}", None),
        "ready": ("GET", f"/v2/models/{name}/ready", None),
        "version": ("GET", f"/v2/models/{name}/versions/1", None),
        "health": ("GET", "/v2/health/ready", None),
    }
    return {key: service.handle(http_event(*args)) for key, args in calls.items()}


def assert_no_internals(response: Mapping[str, Any], *secrets: str) -> None:
    text = response["body"]
    assert not re.search(r"[0-9a-f]{64}", text), text  # no sha256
    for word in (
        "/tmp",
        "Traceback",
        "Errno",
        "onnxruntime",
        "s3://",
        "127.0.0.1",
        "sha256",
        *secrets,
    ):
        assert word not in text, f"{word!r} leaked in {text}"


def assert_unavailable(service: PredictService, message: str, *secrets: str) -> None:
    for route, response in every_model_route(service).items():
        assert response["statusCode"] == 503, (route, response["body"])
        expected = {"error": message}
        if route in ("ready", "health"):
            expected["ready"] = False  # type: ignore[assignment]
        assert body_of(response) == expected, route
        assert_no_internals(response, *secrets)


@pytest.fixture
def published(tmp_path: Path) -> Path:
    publish_digits(tmp_path)
    return tmp_path


def version_dir(root: Path, version: str = "1") -> Path:
    return root / "store" / "models" / MODEL / "versions" / version


def test_corrupted_artifact_is_503_and_never_served(published: Path) -> None:
    model = version_dir(published) / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    service = digits_service(published)
    service.warm()  # logs and stays up
    assert_unavailable(
        service,
        f"model {MODEL}:1 failed its integrity check (its model.onnx is not the file its manifest lists) and is not served",
        str(published),
    )
    assert list((published / "cache").glob("*.onnx")) == []  # nothing unverified kept


def test_missing_artifact_is_503(published: Path) -> None:
    (version_dir(published) / "model.onnx").unlink()
    assert_unavailable(
        digits_service(published),
        f"model {MODEL}:1 is incomplete in the registry (its model.onnx is missing) and is not served",
    )


def test_artifact_that_is_not_onnx_is_503(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf at all" * 10)
    manifest = onnx_factory.manifest_for(
        onnx_factory.linear_classifier(tmp_path / "real.onnx", features=64, classes=10), MODEL, "1"
    )
    manifest = replace(
        manifest,
        file=ModelFile(sha256=sha256_file(junk), size=junk.stat().st_size, opset=17, producer="x"),
    )
    store = LocalStore(tmp_path / "store")
    with pytest.raises(BadRequest, match=r"junk\.onnx is not an ONNX model"):
        Registry(store).publish(manifest, junk)  # refused at publish, nothing written
    assert list(store.list_keys("")) == []
    # A store written by other means (a copy gone wrong, a hand upload): the sha256 matches the
    # manifest, so only onnxruntime can tell, and serving says the version cannot be loaded.
    store.put_bytes(model_key(MODEL, "1"), junk.read_bytes())
    store.put_bytes(manifest_key(MODEL, "1"), manifest.to_json().encode())
    assert_unavailable(digits_service(tmp_path), f"model {MODEL}:1 cannot be loaded")


def test_manifest_that_does_not_match_the_graph_is_503(tmp_path: Path) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx", features=64, classes=10)
    manifest = onnx_factory.manifest_for(path, MODEL, "1")
    manifest = replace(manifest, inputs=(TensorSpec("pixels", "float32", (-1, 64)),))
    Registry(LocalStore(tmp_path / "store")).publish(manifest, path)
    assert_unavailable(digits_service(tmp_path), f"model {MODEL}:1 does not match its manifest")


def test_unreachable_store_is_503(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nobody listens
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": MODEL, "AIAAS_STORE": "s3://aiaas-gone/registry"})
    service.warm()
    response = service.handle(http_event("POST", f"/models/{MODEL}/predict", ROW))
    assert (response["statusCode"], body_of(response)) == (503, {"error": "model is not available"})
    assert_no_internals(response, "aiaas-gone")
    ready = service.handle(http_event("GET", f"/v2/models/{MODEL}/ready"))
    assert (ready["statusCode"], body_of(ready)) == (
        503,
        {"error": "model is not available", "ready": False},
    )


def test_missing_bucket_on_a_live_s3_server_is_503(moto_server: Any, tmp_path: Path) -> None:
    pool = ModelPool(
        Registry(S3Store("aiaas-no-such-bucket", "registry")),
        ArtifactCache(S3Store("aiaas-no-such-bucket", "registry"), tmp_path / "cache"),
    )
    service = service_from_env({"AIAAS_MODEL": MODEL}, pool)
    response = service.handle(http_event("POST", f"/v2/models/{MODEL}/infer", INFER))
    assert (response["statusCode"], body_of(response)) == (503, {"error": "model is not available"})
    assert_no_internals(response, "aiaas-no-such-bucket", "NoSuchBucket")


def test_served_from_s3(s3_store: S3Store, tmp_path: Path) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx", features=64, classes=10)
    registry = Registry(s3_store)
    registry.publish(onnx_factory.manifest_for(path, MODEL, "1", labels=tuple("abcdefghij")), path)
    service = service_from_env(
        {"AIAAS_MODEL": MODEL}, ModelPool(registry, ArtifactCache(s3_store, tmp_path / "cache"))
    )
    response = service.handle(http_event("POST", f"/models/{MODEL}/predict", ROW))
    assert response["statusCode"] == 200, response["body"]
    assert body_of(response)["predictions"][0]["label"] in "abcdefghij"


def test_unknown_model_is_404(published: Path) -> None:
    store = LocalStore(published / "store")
    pool = ModelPool(Registry(store), ArtifactCache(store, published / "cache"))
    service = service_from_env({"AIAAS_MODEL": "iris"}, pool)
    service.warm()
    responses = every_model_route(service, "iris")
    for route in ("predict", "infer", "metadata", "ready", "version", "health"):
        assert responses[route]["statusCode"] == 404, route
        assert body_of(responses[route]) == {"error": "model 'iris' not found"}


def test_unknown_alias_is_404(published: Path) -> None:
    service = digits_service(published, AIAAS_MODEL_SELECTOR="@staging")
    response = service.handle(http_event("POST", f"/models/{MODEL}/predict", ROW))
    assert (response["statusCode"], body_of(response)) == (
        404,
        {
            "error": f"alias 'staging' of model '{MODEL}' not found; point it at a version "
            f"with `aiaas promote {MODEL} VERSION --alias staging`"
        },
    )


def test_no_model_configured_fails_at_init_with_a_clear_message() -> None:
    with pytest.raises(ModelUnavailable) as info:
        service_from_env({"AIAAS_STORE": "/nonexistent"})
    assert info.value.public_message == "this function has no model configured"


def test_model_published_after_init_is_served_without_a_restart(tmp_path: Path) -> None:
    service = digits_service(tmp_path)
    service.warm()
    first = service.handle(http_event("POST", f"/models/{MODEL}/predict", ROW))
    assert (first["statusCode"], body_of(first)) == (404, {"error": f"model {MODEL!r} not found"})
    publish_digits(tmp_path)
    second = service.handle(http_event("POST", f"/models/{MODEL}/predict", ROW))
    assert second["statusCode"] == 200


def test_alias_promotion_after_the_ttl_and_a_broken_promotion_keeps_serving(
    published: Path,
) -> None:
    registry = Registry(LocalStore(published / "store"))
    second = onnx_factory.linear_classifier(published / "v2.onnx", features=64, classes=10, seed=5)
    registry.publish(onnx_factory.manifest_for(second, MODEL, "2"), second)
    service = digits_service(published, AIAAS_ALIAS_TTL="0")

    def version() -> str:
        response = service.handle(http_event("POST", f"/models/{MODEL}/predict", ROW))
        return str(body_of(response)["version"])

    assert version() == "1"
    registry.set_alias(MODEL, "production", "2")
    assert version() == "2"
    # Version 3's file is damaged in the store just after its promote (which read it, and
    # refuses a damaged one: tests/runtime/test_move_checked.py): it must not take the
    # endpoint down.
    third = onnx_factory.linear_classifier(published / "v3.onnx", features=64, classes=10, seed=9)
    registry.publish(onnx_factory.manifest_for(third, MODEL, "3"), third)
    registry.set_alias(MODEL, "production", "3")
    (version_dir(published, "3") / "model.onnx").write_bytes(b"damaged")
    assert version() == "2"


def test_unexpected_error_is_500_without_details(
    published: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = digits_service(published)

    def broken() -> None:
        raise RuntimeError("boom in /var/task/secret.py")

    monkeypatch.setattr(service.served, "routed", broken)
    response = service.handle(http_event("POST", f"/models/{MODEL}/predict", ROW))
    assert (response["statusCode"], body_of(response)) == (500, {"error": "internal error"})


def test_a_graph_onnxruntime_cannot_allocate_for_is_503_saying_so(tmp_path: Path) -> None:
    """A graph asking for 16 TB on every run (one asking for gigabytes, many requests at once,
    fails the same way): a bare 500 "internal error" before; the next request still answers."""
    path = onnx_factory.allocating(tmp_path / "m.onnx", 2**21)
    Registry(LocalStore(tmp_path / "store")).publish(
        onnx_factory.manifest_for(path, MODEL, "1"), path
    )
    service = digits_service(tmp_path)
    for _ in range(2):
        response = service.handle(http_event("POST", f"/models/{MODEL}/predict", ROW))
        assert (response["statusCode"], body_of(response)) == (
            503,
            {
                "error": f"model {MODEL}:1 ran out of memory answering this request; retry "
                "later or send fewer rows"
            },
        )
        assert_no_internals(response)


def test_a_version_folder_copied_to_another_model_is_not_served_as_it(published: Path) -> None:
    """A teammate's `cp -r models/digits-mlp models/copy`: the copy answered, naming
    digits-mlp as the model that answered (and its capture went to digits-mlp's prefix)."""
    import shutil

    models = published / "store" / "models"
    shutil.copytree(models / MODEL, models / "copy")
    store = LocalStore(published / "store")
    copy = service_from_env(
        {"AIAAS_MODEL": "copy"}, ModelPool(Registry(store), ArtifactCache(store, published / "c"))
    )
    response = copy.handle(http_event("POST", "/models/copy/predict", ROW))
    assert (response["statusCode"], body_of(response)) == (
        503,
        {"error": "model copy:1 has a corrupt manifest in the registry"},
    )
    answer = digits_service(published).handle(http_event("POST", f"/models/{MODEL}/predict", ROW))
    assert answer["statusCode"] == 200 and body_of(answer)["model"] == MODEL
