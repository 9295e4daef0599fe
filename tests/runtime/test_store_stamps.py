"""Store stamps: the cheap token the per-request alias check compares (directory store), and
none on S3, where the alias TTL rules."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore


def test_local_stamp_changes_with_every_write_even_within_a_clock_tick(
    local_store: LocalStore,
) -> None:
    key = "models/m/aliases/production.json"
    stamps = [local_store.stamp(key)]  # absent
    for _ in range(50):  # same size, back to back: on older kernels mtimes alone would repeat
        local_store.put_bytes(key, b'{"version": "1"}')
        stamps.append(local_store.stamp(key))
    assert all(a != b for a, b in itertools.pairwise(stamps))
    folder = local_store.stamp("models/m/versions")
    local_store.put_bytes("models/m/versions/2/model.onnx", b"x")
    assert local_store.stamp("models/m/versions") != folder  # a folder: a new entry in it
    before = local_store.stamp(key)
    local_store.delete(key)
    assert local_store.stamp(key) not in (before, None)


def test_s3_has_no_cheap_stamp(s3_store: S3Store) -> None:
    s3_store.put_bytes("a/b", b"x")
    assert s3_store.stamp("a/b") is None


def test_local_stamp_is_kept_until_any_process_writes_through_a_store(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "models/m/aliases/production.json"
    local_store.put_bytes(key, b'{"version": "1"}')
    first = local_store.stamp(key)
    calls = []
    real_fstat, real_stat = os.fstat, os.stat
    monkeypatch.setattr(os, "fstat", lambda *a: calls.append(a) or real_fstat(*a))
    monkeypatch.setattr(os, "stat", lambda *a, **k: calls.append(a) or real_stat(*a, **k))
    assert [local_store.stamp(key) for _ in range(3)] == [first] * 3
    assert calls == []  # nothing written since: no system call per request (generation.py)
    # Another process promotes through its own store on the same root: seen at once.
    write = (
        "from functions.runtime.store import LocalStore; "
        f'LocalStore({str(local_store.root)!r}).put_bytes({key!r}, b\'{{"version": "2"}}\')'
    )
    subprocess.run([sys.executable, "-c", write], check=True, cwd=Path(__file__).parents[2])
    assert local_store.stamp(key) not in (first, None)
    second = local_store.stamp(key)
    LocalStore(local_store.root).delete(key)  # another store object in this process
    assert local_store.stamp(key) not in (second, None)
