"""SnapStart: after a restore the S3 client is rebuilt, not reused from the snapshot, and the
predict function resolves its alias again."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.snapstart import reconnect_after_restore
from functions.runtime.store import LocalStore
from infra.local.functions import load_handler_module
from tests.publishing import publish_linear


def test_without_snapstart_nothing_is_registered(tmp_path) -> None:
    assert reconnect_after_restore(LocalStore(tmp_path)) is False


def test_restore_hook_drops_the_s3_client(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks: list[Callable[[], None]] = []
    fake = types.ModuleType("snapshot_restore_py")
    fake.register_after_restore = hooks.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", fake)
    store = S3Store("bucket", "prefix", client=object())  # type: ignore[arg-type]
    assert reconnect_after_restore(store) is True
    assert len(hooks) == 1
    hooks[0]()
    assert store._client is None


def test_a_restored_predict_function_resolves_its_alias_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, s3_bucket: str
) -> None:
    hooks: list[Callable[[], None]] = []
    fake = types.ModuleType("snapshot_restore_py")
    fake.register_after_restore = hooks.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", fake)
    registry = Registry(S3Store(s3_bucket, "registry"))
    publish_linear(registry, tmp_path, "m", "1", seed=1)
    publish_linear(registry, tmp_path, "m", "2", seed=2)
    registry.set_alias("m", "production", "1")
    env = {
        "AIAAS_MODEL": "m",
        "AIAAS_MODEL_SELECTOR": "@production",
        "AIAAS_STORE": f"s3://{s3_bucket}/registry",
        "AIAAS_CACHE_DIR": str(tmp_path / "cache"),
        "AIAAS_ALIAS_TTL": "3600",
    }
    _, module = load_handler_module("functions.predict.handler.handler", env)
    served = module.SERVICE.served
    assert served.current().manifest.version == "1"
    # The alias moves while the snapshot waits; S3 has no stamp to see it, so the TTL would rule.
    registry.set_alias("m", "production", "2")
    assert served.current().manifest.version == "1"  # within the TTL
    assert len(hooks) == 5  # S3 client, random draws, alias, capture setting, capture writer id
    for hook in hooks:
        hook()
    assert served.current().manifest.version == "2"
