"""The progress line long CLI jobs share (`infra.cli.row_progress`): rows or bytes, the rate,
and the percent and time left where the total is known; a fake terminal and an injected clock."""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path

import pytest

from bench.synthetic_transformer import SyntheticShape, write_model
from functions.runtime import s3store
from functions.runtime.s3store import S3Store
from functions.runtime.settings import TransferSettings
from infra.cli import row_progress
from infra.cli.main import main
from infra.cli.row_progress import BYTES, Progress, duration

PART = 5 * 2**20  # the smallest part S3 takes


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bytes_with_a_known_total_show_percent_rate_and_time_left() -> None:
    now = [0.0]
    out = Terminal()
    with Progress(
        "m:2 model.onnx", 4_000_000_000, verb="sent", unit=BYTES, stream=out, clock=lambda: now[0]
    ) as sent:
        sent.add(64_000_000)
        assert out.getvalue() == ""  # within 2 s: a quick upload shows nothing
        now[0] = 10.0
        sent.add(936_000_000)
        now[0] = 10.1
        sent.add(64_000_000)  # within a redraw's 0.2 s: not drawn yet
        now[0] = 20.0
        sent.add(3_000_000_000 - 64_000_000)
    assert out.getvalue().split("\r")[1:] == [
        "m:2 model.onnx: 1.00 GB of 4.00 GB sent (25%), 100.0 MB/s, 10.0 s, 30 s left",
        # The final line is shorter: blanks cover what the last one drew beyond it.
        "m:2 model.onnx: 4.00 GB of 4.00 GB sent (100%), 200.0 MB/s, 20.0 s" + " " * 10 + "\n",
    ]


def test_rows_without_a_total_and_a_quick_job_shows_nothing() -> None:
    now = [0.0]
    out = io.StringIO()
    with Progress("iris batch a.csv", verb="scored", stream=out, clock=lambda: now[0]) as shown:
        shown.add(4096)
        now[0] = 1.9
        shown.add(4096)
    assert out.getvalue() == ""
    now[0] = 0.0
    with Progress("iris batch a.csv", verb="scored", stream=out, clock=lambda: now[0]) as shown:
        now[0] = 2.0
        shown.add(8192)
    assert out.getvalue() == "iris batch a.csv: 8,192 rows scored, 4,096 rows/s, 2.0 s\n"
    with Progress("x", 10, show=False, stream=out, clock=lambda: now[0]) as shown:
        now[0] = 100.0
        shown(5)  # --no-progress
    assert out.getvalue().count("\n") == 1


def test_parts_told_from_many_threads_add_up() -> None:
    now = [0.0]
    out = io.StringIO()
    with Progress("m", 8 * 1000, stream=out, clock=lambda: now[0]) as shown:
        now[0] = 5.0
        threads = [
            threading.Thread(target=lambda: [shown.add(1) for _ in range(1000)]) for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert shown.done == 8000
    assert out.getvalue().splitlines()[-1].startswith("m: 8,000 of 8,000 rows done (100%)")


def test_durations_read_as_a_person_says_them() -> None:
    assert [duration(s) for s in (4.4, 185, 7800)] == ["4 s", "3 min 05 s", "2 h 10 min"]


def test_publish_to_s3_counts_each_multipart_part_once_sent(
    s3_store: S3Store,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(row_progress, "SHOW_AFTER_S", 0.0)  # as if each part took a minute
    monkeypatch.setattr(row_progress, "LOG_EVERY_S", 0.0)
    monkeypatch.setattr(s3store, "MULTIPART_THRESHOLD", PART)  # the ~12 MB data file: 3 parts
    monkeypatch.setenv("AIAAS_TRANSFER_PART_MB", str(PART // 2**20))
    monkeypatch.setenv("AIAAS_TRANSFER_WORKERS", "3")  # sent in parallel
    model = tmp_path / "export" / "model.onnx"
    write_model(model, SyntheticShape.of_bytes(12_000_000, width=64), external=True)
    total = sum(path.stat().st_size for path in model.parent.iterdir())
    args = ["--store", s3_store.uri, "publish", str(model), "--name", "big", "--json"]
    assert main(args) == 0
    shown = capsys.readouterr()
    assert json.loads(shown.out)["version"] == "1"  # stdout: the document alone
    lines = shown.err.splitlines()
    # One line per part or file sent (the data file's three parts, then the model and card),
    # each a count the parts that landed add up to, ending at every byte.
    sent = [float(line.split(": ")[1].split(" MB of ")[0]) for line in lines]
    assert len(sent) >= 4 and sent == sorted(sent)
    assert lines[-1].startswith(f"big:1: {BYTES.count(total)} of {BYTES.count(total)} sent (100%)")


def test_a_multipart_upload_tells_each_part_as_sent(
    s3_store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3store, "MULTIPART_THRESHOLD", PART)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(2 * PART + 1000))
    told: list[int] = []
    store = S3Store(s3_store.bucket, "p", transfer=TransferSettings(part_bytes=PART, workers=2))
    staged = store.stage_file(big, "m/big.bin", progress=told.append)
    staged.abort()
    assert sorted(told) == [1000, PART, PART]  # per part, from the pool's threads
