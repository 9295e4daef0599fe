"""Captured lines the store refuses (full, read-only): said once, and once more when writes work.

Each flush whose write failed logged a warning (~1 a second a model a worker for as long as the
fault lasted: on a full disk the log often shares it). The store here really refuses: a file
stands where the capture/ folder goes, then is removed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from functions.runtime.capture.buffer import CaptureBuffer
from functions.runtime.store import LocalStore


def test_refused_writes_are_said_once_and_their_end_is_said_with_the_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = LocalStore(tmp_path / "store")
    store.put_bytes("models/readme.txt", b"a store")
    blocker = store.root / "capture"
    blocker.write_text("not a folder")
    buffer = CaptureBuffer(store)
    group = ("m", "1", "2026-12-05")
    with caplog.at_level(logging.INFO, "aiaas"):
        caplog.clear()
        for _ in range(5):
            buffer.add(group, b'{"a": 1}\n')
            buffer.flush()
        blocker.unlink()
        buffer.add(group, b'{"a": 2}\n')
        buffer.flush()
    said = [r.getMessage() for r in caplog.records if "captured lines" in r.getMessage()]
    assert len(said) == 2, said
    assert said[0].startswith("1 captured lines of m:1 dropped: ")
    assert said[0].endswith(
        "(said once until a write succeeds; aiaas_capture_dropped_total counts the lines dropped)"
    )
    assert said[1] == "captured lines of m:1 written again; 5 dropped meanwhile"
    assert (buffer.counts.dropped, buffer.counts.written) == (5, 1)
