"""`note: ...` and `warning: ...` lines a command prints are JSON under AIAAS_LOG_FORMAT=json.

Its log records and error line were JSON, but the lines commands print themselves stayed
text among them (`aiaas batch --deployed` on a directory store: `note: a directory store sends
no events ...`), which a log shipper reading one JSON object a line dropped. The real CLI in
a process of its own; the default text output is unchanged."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from infra.cli.json_stderr import JsonLines, json_stderr
from infra.cli.row_progress import Progress
from tests import onnx_factory

ROOT = Path(__file__).resolve().parents[2]
NOTE = "note: a directory store sends no events: nothing scores it until `aiaas batch m "


def aiaas(*args: str, json_lines: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIAAS_LOG_FORMAT": "json" if json_lines else "text"}
    return subprocess.run(
        [sys.executable, "-m", "infra.cli.launch", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_printed_note_is_one_json_line_and_text_without_json(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    assert (
        aiaas("--store", store, "publish", str(model), "--name", "m", json_lines=True).returncode
        == 0
    )
    rows = tmp_path / "rows.csv"
    rows.write_text("x\n1\n")
    done = aiaas("--store", store, "batch", "m", str(rows), "--deployed", json_lines=True)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(line["level"], line["logger"]) for line in lines] == [("INFO", "aiaas.batch")]
    assert str(lines[0]["message"]).startswith(NOTE)
    assert set(lines[0]) == {"timestamp", "level", "message", "logger"}  # as the error lines
    done = aiaas("--store", store, "batch", "m", str(rows), "--deployed", json_lines=False)
    assert done.returncode == 0 and done.stderr.startswith(NOTE), done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_each_line_gets_its_level_and_json_lines_pass_as_they_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIAAS_LOG_FORMAT", "json")
    out = io.StringIO()
    stream = JsonLines(out, "promote")  # type: ignore[arg-type]
    stream.write("warning: production of m reads token ids as other tokens\n  note: see ")
    stream.write('docs\n\n{"level":"INFO","message":"a record"}\nsent 10%\rsent 20%\r')
    stream.write("aiaas promote: error: no such alias")
    stream.write("\n")  # as print writes a line: its text, then its end
    stream.write("no newline at the end")
    stream.close_pending()
    said = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["level"], line["message"]) for line in said] == [
        ("WARNING", "warning: production of m reads token ids as other tokens\n  note: see docs"),
        ("INFO", "a record"),  # already JSON: as written
        ("INFO", "sent 10%"),
        ("INFO", "sent 20%"),
        ("ERROR", "aiaas promote: error: no such alias"),
        ("INFO", "no newline at the end"),
    ]
    assert {line.get("logger") for line in said} == {"aiaas.promote", None}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_progress_line_under_json_on_a_terminal_is_logged_not_redrawn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under json a terminal gets JSON lines, not a redrawn line: a progress line redrawn each
    0.2 s was a JSON object each 0.2 s (300 in a minute of `aiaas batch`), as a log gets one
    each 30 s."""
    monkeypatch.setenv("AIAAS_LOG_FORMAT", "json")
    terminal = _Terminal()
    stream = JsonLines(terminal, "batch")  # type: ignore[arg-type]
    assert not stream.isatty()
    now = [0.0]
    with Progress("scoring rows.csv", 6000, stream=stream, clock=lambda: now[0]) as progress:
        for step in range(1, 301):  # a minute, told every 0.2 s
            now[0] = step * 0.2
            progress(step * 20)
    stream.close_pending()
    said = [json.loads(line)["message"] for line in terminal.getvalue().splitlines()]
    assert len(said) == 3, said  # at 2.2 s, 32.2 s, and the last count
    assert said[-1].startswith("scoring rows.csv: 6,000 of 6,000 rows done (100%)")


def test_a_warning_of_several_lines_is_one_json_object(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before (leftovers2 5): a line each, so a warning's second line was an INFO object of
    its own (a Python warning's source line, the rest of a printed warning) and a reader
    filtering WARNING saw half of it."""
    monkeypatch.setenv("AIAAS_LOG_FORMAT", "json")
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    with json_stderr("publish"):
        print(
            "warning: the int8 variant answers 3 of 40 rows otherwise:\nrow 7: 'a' -> 'b'",
            file=sys.stderr,
        )
        print("published m:2", file=sys.stderr)
        # What warnings.warn writes (pytest records warnings instead): the text at once.
        sys.stderr.write(
            warnings.formatwarning("onnx says:\nopset 9 is old", UserWarning, "m.py", 3)
        )
    said = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["level"], line["message"].splitlines()) for line in said] == [
        (
            "WARNING",
            ["warning: the int8 variant answers 3 of 40 rows otherwise:", "row 7: 'a' -> 'b'"],
        ),
        ("INFO", ["published m:2"]),
        # a Python warning: WARNING too (was INFO); no source line here
        ("WARNING", ["m.py:3: UserWarning: onnx says:", "opset 9 is old"]),
    ]
