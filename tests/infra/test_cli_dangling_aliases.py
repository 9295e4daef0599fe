"""An alias whose version, canary or shadow lost its manifest behind the registry's back (a
bucket edited by hand; prune never deletes an alias's target), found by a registry hunt:

- `aiaas models` / `versions` (and `--json`'s `problems`, the control plane's) listed it as
  healthy while `aiaas show` said the version was not found and the server sent all traffic to
  the other version, or answered 503;
- the server logged "shadow not served" (or "canary not served") at every alias check of every
  worker: 319 identical warnings in 7 minutes with 2 workers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.refs import ModelRef
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.infra.test_cli_registry import run
from tests.publishing import publish_three


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """m:1..3, production -> 1 (90%) + 2 (10%), shadow 3; staging -> 2."""
    registry = publish_three(Registry(LocalStore(tmp_path / "store")), tmp_path)
    registry.set_alias("m", "production", "1")
    registry.set_alias("m", "production", "2", weight=0.1)
    registry.set_shadow("m", "production", "3", 0.5)
    registry.set_alias("m", "staging", "2")
    return registry


def gone(registry: Registry, version: str) -> None:
    registry.store.delete(f"models/m/versions/{version}/manifest.json")


def test_an_alias_pointing_at_a_version_with_no_manifest_is_listed_as_a_problem(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    store = registry.store
    _, out, _ = run(capsys, store, "models")
    assert "!" not in out  # healthy: nothing to say
    gone(registry, "2")
    gone(registry, "3")
    canary = (
        "alias 'production' points at its canary version '2', which is not in the registry "
        "(its manifest is gone): aiaas promote m VERSION --alias production"
    )
    shadow = (
        "alias 'production' points at its shadow version '3', which is not in the registry "
        "(its manifest is gone): aiaas shadow m --off --alias production"
    )
    staging = (
        "alias 'staging' points at version '2', which is not in the registry (its manifest is "
        "gone): aiaas promote m VERSION --alias staging"
    )
    code, out, _ = run(capsys, store, "models")
    assert code == 0 and [line for line in out.splitlines() if "!" in line] == [
        f"  ! {canary}",
        f"  ! {shadow}",
        f"  ! {staging}",
    ]
    code, out, _ = run(capsys, store, "models", "--json")
    assert json.loads(out)["models"][0]["problems"] == [canary, shadow, staging]
    code, out, _ = run(capsys, store, "versions", "m")
    assert all(f"! {problem}" in out for problem in (canary, shadow, staging)), out


def test_a_missing_canary_or_shadow_is_logged_once_until_it_is_back(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"))
    ref = ModelRef("m", alias="production")
    manifest = registry.store.get_bytes("models/m/versions/3/manifest.json")
    gone(registry, "3")
    with caplog.at_level(logging.INFO, logger="aiaas"):
        for _ in range(5):  # five alias checks
            assert pool.load_routed(ref).shadow is None
        registry.store.put_bytes("models/m/versions/3/manifest.json", manifest)
        assert pool.load_routed(ref).shadow is not None
    said = [r.getMessage() for r in caplog.records if r.name.startswith("aiaas")]
    assert [m for m in said if "shadow not served" in m] == [
        "m@production: shadow not served: version '3' of model 'm' not found (said once until "
        "it works again)"
    ]
    assert "m@production: its canary 2 and shadow 3 are served now" in said


def test_the_control_plane_lists_them_too(registry: Registry) -> None:
    client = TestClient(create_app(registry.store))
    gone(registry, "3")
    why = (
        "alias 'production' points at its shadow version '3', which is not in the registry "
        "(its manifest is gone): aiaas shadow m --off --alias production"
    )
    assert client.get("/control/models").json()["models"][0]["problems"] == [why]
    assert client.get("/control/models/m").json()["problems"] == [why]
