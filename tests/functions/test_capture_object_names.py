"""The names of captured-line objects: `capture/<model>/<version>/<date>/<HHMMSS>-<writer>-<seq>`,
in the order their lines were answered (the export reads them in key order)."""

from __future__ import annotations

from pathlib import Path

from functions.runtime.capture.buffer import CaptureBuffer
from functions.runtime.store import LocalStore
from tests.functions.test_predict_capture import MODEL


def test_lines_of_a_day_written_after_its_midnight_are_that_day_s_last_object(
    tmp_path: Path,
) -> None:
    """An object is named by the time it is written, under its lines' date: lines of
    23:59:59.9 written at 00:00:01 were named 000001 and exported before that day's earlier
    objects (lifecycle hunt)."""
    store = LocalStore(tmp_path / "store")
    day = 1_799_971_200.0  # 2027-01-15T00:00:00Z
    wall = [day - 3600.0]
    buffer = CaptureBuffer(store, clock=lambda: 0.0, wall=lambda: wall[0])
    group = (MODEL, "1", "2027-01-14")
    buffer.add(group, b'{"n":1}\n')
    buffer.flush()  # written at 23:00:00
    buffer.add(group, b'{"n":2}\n')
    wall[0] = day + 1.0
    buffer.flush()  # written at 00:00:01 the next day
    buffer.add((MODEL, "1", "2027-01-15"), b'{"n":3}\n')
    buffer.flush()
    keys = sorted(store.list_keys("capture"))
    assert [store.get_bytes(k) for k in keys] == [b'{"n":1}\n', b'{"n":2}\n', b'{"n":3}\n']
    assert [k.split("/")[-2:][1][:6] for k in keys] == ["230000", "235959", "000001"]
