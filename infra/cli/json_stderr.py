"""A command's stderr under `AIAAS_LOG_FORMAT=json`: each line it prints is one JSON object.

Its log records and its error line were JSON (fatal_lines.py), but the lines commands print
themselves (`note: a directory store sends no events ...`, `warning: ...` from publish, train,
promote; a summary such as `nothing deleted`) stayed text among them, and a log shipper that
reads one JSON object a line dropped or mangled them. They go through this stream instead:
a line already JSON passes as it is, any other becomes `{"timestamp", "level", "message",
"logger"}` as fatal_lines writes one, its level read from its prefix (`warning:` WARNING,
`error:` ERROR, else INFO). Text output (the default) is untouched: the stream is only put in
place under json.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from infra.cli import fatal_lines

# `warning: ...`, `aiaas batch: error: ...`, `python -m x: error: ...`
_LEVELS = (
    (re.compile(r"^warning:", re.IGNORECASE), logging.WARNING),
    (re.compile(r"^(?:[\w .-]+: )?error:", re.IGNORECASE), logging.ERROR),
)


class JsonLines(io.TextIOBase):
    """A text stream writing each complete line to `stream` as a JSON object."""

    def __init__(self, stream: TextIO, command: str | None) -> None:
        self.stream = stream
        self.command = command
        self._pending = ""

    def write(self, text: str) -> int:
        # A carriage return ends a line too: a progress bar's redraw is one line each.
        self._pending += text
        *lines, self._pending = re.split(r"\r\n|\r|\n", self._pending)
        for line in lines:
            self._line(line)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def close_pending(self) -> None:
        """The last line, when the command ended without its newline."""
        if self._pending:
            line, self._pending = self._pending, ""
            self._line(line)
        self.flush()

    def isatty(self) -> bool:
        # JSON lines, on a terminal too: a progress line redrawn each 0.2 s for a terminal was
        # a JSON object each 0.2 s; told it is no terminal, it writes a line each 30 s as in a
        # log, and tqdm (`aiaas train`) gives way to epoch lines.
        return False

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> Any:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")

    def writable(self) -> bool:
        return True

    def _line(self, line: str) -> None:
        said = line.strip()
        if not said:
            return  # a blank separator line says nothing a JSON reader keeps
        if said.startswith("{") and said.endswith("}"):  # a log record or an error line
            self.stream.write(said + "\n")
            return
        level = next((lvl for pattern, lvl in _LEVELS if pattern.match(said)), logging.INFO)
        fatal_lines.write(said, command=self.command, level=level, stream=self.stream)


@contextlib.contextmanager
def json_stderr(command: str | None) -> Iterator[None]:
    """sys.stderr as JsonLines while the command runs, under json; as it is otherwise."""
    if not fatal_lines.json_asked():
        yield
        return
    real = sys.stderr
    lines = JsonLines(real, command)
    sys.stderr = lines
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            lines.close_pending()
        if sys.stderr is lines:
            sys.stderr = real
