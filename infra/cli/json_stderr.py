"""A command's stderr under `AIAAS_LOG_FORMAT=json`: each line it prints is one JSON object.

Its log records and its error line were JSON (fatal_lines.py), but the lines commands print
themselves (`note: a directory store sends no events ...`, `warning: ...` from publish, train,
promote; a summary such as `nothing deleted`) stayed text among them, and a log shipper that
reads one JSON object a line dropped or mangled them. They go through this stream instead:
a line already JSON passes as it is, any other message (a print, a warning: its lines, newlines
and all) becomes one `{"timestamp", "level", "message", "logger"}` as fatal_lines writes one,
its level read from its prefix (`warning:` WARNING, `error:` ERROR, else INFO). Text output (the default) is untouched: the stream is only put in
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
    # A Python warning as warnings.showwarning writes it (`file.py:12: UserWarning: ...`, a
    # library's FutureWarning or ConvergenceWarning): INFO, so a reader filtering WARNING lost it.
    (re.compile(r"^[^\n]*:\d+: \w*Warning: "), logging.WARNING),
    (re.compile(r"^(?:[\w .-]+: )?error:", re.IGNORECASE), logging.ERROR),
)


class JsonLines(io.TextIOBase):
    """A text stream writing each complete line to `stream` as a JSON object."""

    def __init__(self, stream: TextIO, command: str | None) -> None:
        self.stream = stream
        self.command = command
        self._pending = ""

    def write(self, text: str) -> int:
        # One message a print (its text, then "\n") or a warning (`warnings.showwarning`
        # writes its lines at once): lines of one are one JSON object, its level the first
        # line's. A line each was an object each: a warning's second line ("  note: ...", a
        # Python warning's source line) an INFO record of its own, its warning cut off.
        # A carriage return ends a message too: a progress bar's redraw is one object each.
        self._pending = (self._pending + text).replace("\r\n", "\n")
        *done, self._pending = self._pending.split("\r")
        if self._pending.endswith("\n"):
            done.append(self._pending)
            self._pending = ""
        for block in done:
            self._block(block)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def close_pending(self) -> None:
        """The last message, when the command ended without its newline."""
        if self._pending:
            block, self._pending = self._pending, ""
            self._block(block)
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

    def _block(self, block: str) -> None:
        """The lines of one write as messages: a blank line (a separator, saying nothing a
        JSON reader keeps) or a line already JSON (a log record, an error line) ends one."""
        said: list[str] = []
        for line in block.split("\n"):
            stripped = line.strip()
            if not stripped or (stripped.startswith("{") and stripped.endswith("}")):
                self._message(said)
                said = []
                if stripped:
                    self.stream.write(stripped + "\n")
            else:
                said.append(line.rstrip())
        self._message(said)

    def _message(self, lines: list[str]) -> None:
        if not lines:
            return
        text = "\n".join(lines).strip()
        level = next((lvl for pattern, lvl in _LEVELS if pattern.match(text)), logging.INFO)
        fatal_lines.write(text, command=self.command, level=level, stream=self.stream)


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
