"""A version pruned under a running predict function: a caller pinned to it is answered from
memory until the alias TTL, then a clean 404 (never a 500), and the alias's version is never
pruned (real API Gateway v2 events, a real store, `aiaas prune`)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from functions.runtime import prune_log, still_published
from functions.runtime.cache import ArtifactCache
from functions.runtime.errors import ModelNotFound, ModelUnavailable
from functions.runtime.manifest import MODEL_FILE
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from infra.local.functions import load_handler
from tests.functions.test_predict_events import body_of, load_event
from tests.publishing import publish_three

TTL = 60.0
PRUNED_2 = (
    "version '2' of model 'm' was deleted (pruned; `aiaas versions m` shows when): point the "
    "deployment at an alias (@production) or a published version"
)


@pytest.fixture
def served(tmp_path: Path) -> tuple[Callable[..., Any], str]:
    """The predict function of m (1, 2, 3; @production at 1), and its store."""
    env = published_env(tmp_path, "@production")
    return load_handler("functions.predict.handler.handler", env), env["AIAAS_STORE"]


def published_env(tmp_path: Path, selector: str) -> dict[str, str]:
    """m (1, 2, 3; @production at 1) published in a store under `tmp_path`, and the predict
    function's environment serving it by `selector`."""
    store = tmp_path / "store"
    publish_three(Registry(LocalStore(store)), tmp_path)
    return {
        "AIAAS_MODEL": "m",
        "AIAAS_MODEL_SELECTOR": selector,
        "AIAAS_STORE": str(store),
        "AIAAS_CACHE_DIR": str(tmp_path / "cache"),
        "AIAAS_ALIAS_TTL": str(TTL),
    }


def pinned(version: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event("predict_version_simple"))
    path = f"/models/m/versions/{version}/predict"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["pathParameters"] = {"version": version}
    event["body"] = json.dumps({"inputs": [[0.1, 0.2, 0.3, 0.4]]})
    event["headers"].pop("content-length")
    return event


def test_a_pruned_pinned_version_answers_until_the_ttl_then_404s(
    served: tuple[Callable[..., Any], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, store = served
    assert handler(pinned("2"), None)["statusCode"] == 200
    assert main(["--store", store, "prune", "m", "--keep", "0", "--yes"]) == 0
    assert Registry(LocalStore(store)).versions("m") == ["1", "3"]  # 1: @production
    answer = handler(pinned("2"), None)  # loaded, within the TTL: still answered
    assert answer["statusCode"] == 200 and body_of(answer)["version"] == "2"
    later = time.monotonic() + TTL + 1  # the TTL passed
    monkeypatch.setattr(still_published, "monotonic", lambda: later)
    answer = handler(pinned("2"), None)
    assert answer["statusCode"] == 404
    assert body_of(answer) == {"error": PRUNED_2}
    assert handler(pinned("1"), None)["statusCode"] == 200  # the alias's: never pruned


def plain() -> dict[str, Any]:
    event = copy.deepcopy(load_event("predict_simple"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/models/m/predict"
    event["pathParameters"] = {"name": "m"}
    event["body"] = json.dumps({"inputs": [[0.1, 0.2, 0.3, 0.4]]})
    event["headers"].pop("content-length")
    return event


def test_a_deployment_pinned_to_a_pruned_version_404s_after_the_ttl_as_a_cold_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`AIAAS_MODEL_SELECTOR=:2`: a warm copy served 2 forever after `aiaas prune` deleted it
    (the pinned reference was never checked again) while every cold start failed."""
    env = published_env(tmp_path, ":2")
    store = Path(env["AIAAS_STORE"])
    warm = load_handler("functions.predict.handler.handler", env)
    answer = warm(plain(), None)
    assert (answer["statusCode"], body_of(answer)["version"]) == (200, "2")
    assert main(["--store", str(store), "prune", "m", "--keep", "0", "--yes"]) == 0
    assert warm(plain(), None)["statusCode"] == 200  # within the TTL: no store call
    later = time.monotonic() + TTL + 1
    monkeypatch.setattr(still_published, "monotonic", lambda: later)
    cold = load_handler("functions.predict.handler.handler", env)
    for handler in (warm, cold, warm):
        answer = handler(plain(), None)
        assert (answer["statusCode"], body_of(answer)) == (404, {"error": PRUNED_2})


def test_a_pruned_version_leaves_no_lock_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`load_version` dropped a pruned version's session but kept its lock: one a version."""
    registry = publish_three(Registry(LocalStore(tmp_path / "store")), tmp_path)
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"))
    assert pool.load_version("m", "2").manifest.version == "2"
    assert main(["--store", str(tmp_path / "store"), "prune", "m", "--keep", "0", "--yes"]) == 0
    later = time.monotonic() + pool.settings.alias_ttl + 1
    monkeypatch.setattr(still_published, "monotonic", lambda: later)
    with pytest.raises(ModelNotFound, match=r"was deleted \(pruned"):
        pool.load_version("m", "2")
    assert ("m", "2") not in pool._locks


STORE_CALLS = ("get_bytes", "read_versioned", "head", "exists", "stamp", "version", "list_keys")


def count_store_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every read a LocalStore makes from now on, by method name."""
    calls: list[str] = []
    for method in STORE_CALLS:
        real = getattr(LocalStore, method)

        def counted(self: LocalStore, *args: Any, _real: Any = real, _name: str = method,
                    **kwargs: Any) -> Any:  # fmt: skip
            calls.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(LocalStore, method, counted)
    return calls


def test_a_version_pruned_for_good_costs_no_store_read_per_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deployment pinned to a pruned version (and callers pinned to one) read its manifest
    and the prune record again at every request: two GETs each, for as long as traffic came."""
    env = published_env(tmp_path, ":2")
    handler = load_handler("functions.predict.handler.handler", env)
    assert handler(plain(), None)["statusCode"] == 200
    assert main(["--store", env["AIAAS_STORE"], "prune", "m", "--keep", "0", "--yes"]) == 0
    monkeypatch.setattr(prune_log, "CLAIM_S", 0.0)  # its run ended long ago
    later = time.monotonic() + TTL + 1
    monkeypatch.setattr(still_published, "monotonic", lambda: later)
    first = handler(plain(), None)
    assert (first["statusCode"], body_of(first)) == (404, {"error": PRUNED_2})
    assert handler(pinned("2"), None)["statusCode"] == 404  # the OIP-style pinned route too
    calls = count_store_calls(monkeypatch)
    for event in [plain(), pinned("2")] * 10:
        answer = handler(event, None)
        assert (answer["statusCode"], body_of(answer)) == (404, {"error": PRUNED_2})
    assert calls == []


def test_a_version_pruned_moments_ago_is_read_again_as_its_prune_may_put_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within its run a prune puts back the manifest of a version an alias moved onto
    (`pruning.carry_out`): a 404 remembered from then would hide the version it kept."""
    env = published_env(tmp_path, "@production")
    store = LocalStore(Path(env["AIAAS_STORE"]))
    handler = load_handler("functions.predict.handler.handler", env)
    saved = store.get_bytes("models/m/versions/2/manifest.json")
    assert main(["--store", env["AIAAS_STORE"], "prune", "m", "--keep", "0", "--yes"]) == 0
    answer = handler(pinned("2"), None)
    assert (answer["statusCode"], body_of(answer)) == (404, {"error": PRUNED_2})
    calls = count_store_calls(monkeypatch)
    assert handler(pinned("2"), None)["statusCode"] == 404
    assert calls.count("get_bytes") + calls.count("read_versioned") == 2  # manifest, record
    store.put_bytes("models/m/versions/2/manifest.json", saved, if_absent=True)  # put back
    answer = handler(pinned("2"), None)  # (its model file is gone: not served, not "pruned")
    assert "pruned" not in body_of(answer).get("error", "")


def test_a_prune_record_without_a_readable_time_never_settles(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    record = {"pruned": ["1", "2", "3"], "history": [
        {"id": "a", "versions": ["1"], "deleted_at": "2020-01-01T00:00:00Z"},
        {"id": "b", "versions": ["2"], "deleted_at": "yesterday"},
        {"id": "c", "versions": ["3"], "deleted_at": "2020-01-01T00:00:00"},  # no zone
    ]}  # fmt: skip
    store.put_bytes(prune_log.prune_key("m"), json.dumps(record).encode())
    found = {v: prune_log.version_not_found(store, "m", v) for v in ("1", "2", "3", "4")}
    assert {v: getattr(e, "settled", None) for v, e in found.items()} == {
        "1": True, "2": False, "3": False, "4": None,
    }  # fmt: skip
    assert type(found["4"]) is ModelNotFound


def test_a_version_pruned_while_its_first_request_loads_it_is_its_404(tmp_path: Path) -> None:
    """The load read the manifest, then a prune deleted the version: its 404, not a 503 saying
    the registry is incomplete (6 of 48 cold first requests racing `aiaas prune`)."""
    store = tmp_path / "store"
    registry = Registry(LocalStore(store))
    publish_three(registry, tmp_path)
    manifest = registry.manifest("m", "2")  # a caller pinned to 2: its first request, cold ...
    assert main(["--store", str(store), "prune", "m", "--keep", "0", "--yes"]) == 0  # overtaken
    with pytest.raises(ModelNotFound) as raised:
        ArtifactCache(registry.store, tmp_path / "cache").fetch(manifest)
    assert (raised.value.status, raised.value.message) == (404, PRUNED_2)
    registry.store.delete(f"models/m/versions/3/{MODEL_FILE}")  # a file lost, manifest kept
    with pytest.raises(ModelUnavailable, match="is missing from the store"):
        ArtifactCache(registry.store, tmp_path / "cache").fetch(registry.manifest("m", "3"))
