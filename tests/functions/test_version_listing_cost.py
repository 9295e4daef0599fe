"""A model's versions are listed with a delimiter (a LIST per 1,000 versions), once an alias
TTL: a bare name's resolution listed every key of every version (a LIST page per 1,000 files:
model, manifest, card, plots, ...), and GET /v2/models/{name} listed them all again within the
same TTL (hunt_cost finding 3). A version still counts only once its manifest is written.
`aiaas publish` finds a lookalike model name from the model folders, not from a walk of every
key of the store (finding 5). Counted on S3 (moto, real requests) and on a directory store."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from functions.predict.service import PredictService, service_from_env
from functions.runtime.registry import Registry, model_key
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectStore
from infra.cli.main import main
from tests import onnx_factory
from tests.functions.test_predict_events import http_event

MODEL = "iris"
TTL = 0.4
CARD_FILES = 1001  # over one LIST page of keys under version 1


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(kind, prefix) of each listing made from now on, by any store of the process: on S3
    each ListObjectsV2 request (a page), by whether it asks a delimiter; on a directory store
    each list_keys / list_dirs call."""
    seen: list[tuple[str, str]] = []
    pages = S3Store._pages

    def paged(self: S3Store, prefix: str, starting: str = "", **more: Any) -> Any:
        kind = "LIST delimiter" if more.get("Delimiter") == "/" else "LIST every key"
        for page in pages(self, prefix, starting, **more):
            seen.append((kind, prefix))
            yield page

    monkeypatch.setattr(S3Store, "_pages", paged)
    for method in ("list_keys", "list_dirs"):
        inner = getattr(LocalStore, method)

        def counted(
            self: LocalStore, prefix: str, *args: Any, _m: str = method, _f: Any = inner
        ) -> Any:
            seen.append((_m, prefix))
            return _f(self, prefix, *args)

        monkeypatch.setattr(LocalStore, method, counted)
    return seen


def _service(store: ObjectStore, cache_dir: Path) -> PredictService:
    return service_from_env(
        {
            "AIAAS_STORE": store.uri,
            "AIAAS_CACHE_DIR": str(cache_dir),
            "AIAAS_MODEL": MODEL,  # a bare name: the newest published version
            "AIAAS_ALIAS_TTL": str(TTL),
            "AIAAS_DISABLE_METRICS": "1",
            "AIAAS_DRIFT_FLUSH_SECONDS": "0",
        }
    )


def _call(service: PredictService, method: str, path: str, body: str | None = None) -> Any:
    answer = service.handle(http_event(method, path, body))
    assert answer["statusCode"] == 200, answer["body"]
    return json.loads(answer["body"])


def _ask(service: PredictService) -> tuple[str, list[str]]:
    """(the version a predict answered with, the versions metadata names)."""
    doc = _call(service, "POST", f"/models/{MODEL}/predict", '{"inputs": [[1, 2, 3, 4]]}')
    return doc["version"], _call(service, "GET", f"/v2/models/{MODEL}")["versions"]


def test_a_bare_name_and_its_metadata_share_one_delimiter_listing_a_ttl(
    store: ObjectStore,
    classifier_onnx: Path,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = Registry(store)
    for version in ("1", "2"):
        registry.publish(
            onnx_factory.manifest_for(classifier_onnx, MODEL, version), classifier_onnx
        )
    card = [f"models/{MODEL}/versions/1/card/plot-{i:04d}.txt" for i in range(CARD_FILES)]
    with ThreadPoolExecutor(8) as pool:  # a big card: old walks took two pages, now one
        list(pool.map(lambda key: store.put_bytes(key, b"x"), card))
    store.put_bytes(model_key(MODEL, "3"), b"being published: no manifest yet")
    service = _service(store, cache_dir)
    seen = _counting(monkeypatch)

    assert _ask(service) == ("2", ["1", "2"])  # 3 has no manifest: not a version yet
    first = len(seen)
    for _ in range(10):
        assert _ask(service) == ("2", ["1", "2"])
    assert len(seen) == first  # within the TTL: metadata took the resolution's listing
    time.sleep(TTL + 0.05)
    assert _ask(service) == ("2", ["1", "2"])
    if isinstance(store, S3Store):
        # A delimiter LIST a TTL: was two walks of every key (4 pages at start, 4 a TTL).
        assert Counter(kind for kind, _ in seen) == Counter({"LIST delimiter": 2})
    else:  # the resolution's listing, and its watch's (a directory: no request is paid)
        assert [kind for kind, _ in seen] == ["list_dirs"] * 2 * first

    store.delete(model_key(MODEL, "3"))  # the publish of 3, finished
    registry.publish(onnx_factory.manifest_for(classifier_onnx, MODEL, "3"), classifier_onnx)
    time.sleep(TTL + 0.05)
    assert _ask(service) == ("3", ["1", "2", "3"])


def test_more_unpublished_folders_than_read_fall_back_to_the_exact_listing(
    store: ObjectStore, classifier_onnx: Path, cache_dir: Path
) -> None:
    registry = Registry(store)
    registry.publish(onnx_factory.manifest_for(classifier_onnx, MODEL, "1"), classifier_onnx)
    for version in ("2", "3", "4", "5"):  # four publishes killed outright, files left
        store.put_bytes(model_key(MODEL, version), b"no manifest")
    assert _ask(_service(store, cache_dir)) == ("1", ["1"])


def test_a_model_with_no_manifest_at_all_is_not_found(store: ObjectStore, cache_dir: Path) -> None:
    store.put_bytes(model_key(MODEL, "1"), b"no manifest")
    answer = _service(store, cache_dir).handle(http_event("GET", f"/v2/models/{MODEL}"))
    assert answer["statusCode"] == 404, answer["body"]


def _publish(store: ObjectStore, path: Path, name: str) -> int:
    return main(["--store", store.uri, "publish", str(path), "--name", name, "--no-progress"])


def test_publish_finds_a_lookalike_name_from_the_model_folders(
    store: ObjectStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "l.onnx")
    assert _publish(store, path, "other") == 0
    keys = [f"models/other/versions/1/card/plot-{i:04d}.txt" for i in range(CARD_FILES)]
    with ThreadPoolExecutor(8) as pool:  # another model's files: publish read every one
        list(pool.map(lambda key: store.put_bytes(key, b"x"), keys))
    store.put_bytes(model_key("iris-logistic", "1"), b"cut off: no manifest, no model")
    seen = _counting(monkeypatch)
    assert _publish(store, path, "iris_logistic") == 0  # the lookalike has no version
    walked = {prefix for kind, prefix in seen if kind in ("LIST every key", "list_keys")}
    # the model's own versions and its lookalike's; was also every key of the store (3 pages)
    assert walked == {"models/iris_logistic/versions", "models/iris-logistic/versions"}
    assert _publish(store, path, "iris-logistic") == 1
    assert "differs from this store's 'iris_logistic' only in" in capsys.readouterr().err
