"""GET /v2/models/{name} names the published versions from one S3 listing per alias TTL: it
made a LIST (12.5x a GET's price, and a round trip) on every call, and clients poll metadata."""

from __future__ import annotations

import json
import time
from pathlib import Path

from functions.predict.service import service_from_env
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from tests import onnx_factory
from tests.functions.test_predict_events import http_event

MODEL = "iris"
TTL = 0.3


def test_metadata_lists_versions_once_a_ttl_and_sees_a_new_one_after(
    s3_bucket: str, s3_store: S3Store, classifier_onnx: Path, cache_dir: Path
) -> None:
    registry = Registry(s3_store)
    registry.publish(onnx_factory.manifest_for(classifier_onnx, MODEL, "1"), classifier_onnx)
    registry.set_alias(MODEL, "production", "1", actor="ci")
    service = service_from_env(
        {
            "AIAAS_STORE": f"s3://{s3_bucket}/registry",
            "AIAAS_CACHE_DIR": str(cache_dir),
            "AIAAS_MODEL": MODEL,
            "AIAAS_ALIAS_TTL": str(TTL),
            "AIAAS_DISABLE_METRICS": "1",
            "AIAAS_DRIFT_FLUSH_SECONDS": "0",
        }
    )
    lists: list[str] = []
    client = service.served.pool.registry.store.client  # type: ignore[attr-defined]
    client.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: lists.append("list"))

    def versions() -> list[str]:
        answer = service.handle(http_event("GET", f"/v2/models/{MODEL}"))
        assert answer["statusCode"] == 200, answer["body"]
        return json.loads(answer["body"])["versions"]  # type: ignore[no-any-return]

    assert [versions() for _ in range(20)] == [["1"]] * 20
    assert len(lists) == 1  # was 20: one listing a call
    registry.publish(onnx_factory.manifest_for(classifier_onnx, MODEL, "2"), classifier_onnx)
    time.sleep(TTL + 0.05)
    assert versions() == ["1", "2"]  # listed again once the TTL passed
    assert len(lists) == 2
