"""Captured lines of every version come in version order, numerically (as `capture_keys` says).

The versions were taken as listed, by text: an export of a model's captures gave version 10's
lines before version 2's. Objects written where and as the capture buffer names them.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from functions.runtime.capture.buffer import capture_prefix
from functions.runtime.capture.reader import capture_keys, captured_lines
from functions.runtime.store import LocalStore

DAY = "2026-12-05"


def test_every_versions_lines_come_in_version_order(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    for version in ("10", "2", "1", "ci-3"):
        line = orjson.dumps({"version": version, "request_id": f"r{version}"}) + b"\n"
        store.put_bytes(f"{capture_prefix('m1', version)}/{DAY}/120000-w1-000001.jsonl", line)
    # Named versions first, then numbers by value: the registry's one order (refs.py).
    assert [line["version"] for line in captured_lines(store, "m1")] == ["ci-3", "1", "2", "10"]
    assert capture_keys(store, "m1", "10") == [f"capture/m1/10/{DAY}/120000-w1-000001.jsonl"]
