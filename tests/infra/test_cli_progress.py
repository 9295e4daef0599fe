"""The progress line long CLI jobs share (`infra.cli.row_progress`): rows or bytes, the rate,
and the percent and time left where the total is known; a fake terminal and an injected clock."""

from __future__ import annotations

import io
import threading

from infra.cli.row_progress import BYTES, Progress, duration


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
        "m:2 model.onnx: 4.00 GB of 4.00 GB sent (100%), 200.0 MB/s, 20.0 s\n",
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
