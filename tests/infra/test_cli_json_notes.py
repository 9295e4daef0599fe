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
from pathlib import Path

import pytest

from infra.cli.json_stderr import JsonLines
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
    stream.write("aiaas promote: error: no such alias\nno newline at the end")
    stream.close_pending()
    said = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["level"], line["message"]) for line in said] == [
        ("WARNING", "warning: production of m reads token ids as other tokens"),
        ("INFO", "note: see docs"),
        ("INFO", "a record"),  # already JSON: as written
        ("INFO", "sent 10%"),
        ("INFO", "sent 20%"),
        ("ERROR", "aiaas promote: error: no such alias"),
        ("INFO", "no newline at the end"),
    ]
    assert {line.get("logger") for line in said} == {"aiaas.promote", None}
