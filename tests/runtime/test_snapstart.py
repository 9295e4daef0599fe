"""SnapStart: after a restore the S3 client is rebuilt, not reused from the snapshot."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable

import pytest

from functions.runtime.s3store import S3Store
from functions.runtime.snapstart import reconnect_after_restore
from functions.runtime.store import LocalStore


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
