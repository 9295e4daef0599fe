"""The lines a command writes as it ends on an error or a stop signal: text, or with
`AIAAS_LOG_FORMAT=json` one JSON object of the functions' shape (infra/local/lambda_logs.py).

A pod's logs go to a JSON pipeline (Loki, Elastic): `aiaas serve` refused at its start (a bad
setting, an unreadable store, a port taken, a bad flag) wrote its reason as one text line,
which the pipeline dropped or mangled, and it is the line the operator needs. The format is
read from the environment here, not from the checked setting: a refusal may come before it
is checked, and a bad value (`AIAAS_LOG_FORMAT=yaml`) is itself refused in text. Only the standard library: a line may be written from a signal
handler that interrupted an import (early_stop.py), which must not import anything.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command Ctrl-C ended


def json_asked() -> bool:
    return os.environ.get("AIAAS_LOG_FORMAT", "").strip().lower() == "json"


def logger_name(command: str | None) -> str:
    """`aiaas.serve` (serve's own lines' logger), `aiaas.batch`, ...; `aiaas.cli` before one."""
    return f"aiaas.{command}" if command else "aiaas.cli"


def write(
    text: str,
    *,
    command: str | None,
    level: int = logging.ERROR,
    exc: BaseException | None = None,
    stream: Any = None,
    **fields: Any,
) -> None:
    """`text` on stderr (or `stream`) as it is, or as one JSON line with `fields` and, for
    `exc`, its errorType, errorMessage and stackTrace (as Lambda writes an exception)."""
    stream = sys.stderr if stream is None else stream
    if json_asked():
        line: dict[str, Any] = {
            "timestamp": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": logging.getLevelName(level),
            "message": text,
            "logger": logger_name(command),
        }
        if exc is not None:  # as Lambda writes an exception (lambda_logs.LambdaJsonFormatter)
            line["errorType"] = type(exc).__name__
            line["errorMessage"] = str(exc)
            line["stackTrace"] = traceback.format_tb(exc.__traceback__)
        text = json.dumps({**line, **fields}, default=str, separators=(",", ":"))
    elif exc is not None:
        traceback.print_exception(exc, file=stream)
    print(text, file=stream, flush=True)


def typed_command(argv: Sequence[str]) -> str | None:
    """The word argv gives as the command, known or not."""
    # The command is the first positional argument: skip the value of `--store VALUE`.
    args = [a for i, a in enumerate(argv) if not (i > 0 and argv[i - 1] == "--store")]
    return next((arg for arg in args if not arg.startswith("-")), None)


def interrupted(command: str | None, exc: KeyboardInterrupt) -> int:
    """Say how a stop signal ended the command; its exit status. Ctrl-C, even while the
    command's modules import: no traceback. What a command was writing is cleaned up as the
    exception unwinds (temp files, multipart uploads). A command that turns SIGTERM/SIGHUP into
    one (batch) sets `signum`: 128 + it."""
    _forget_unhandled_interrupt()
    signum = getattr(exc, "signum", None)
    said = f"interrupted ({exc})" if signum else "interrupted"
    write(f"aiaas {command or ''}".rstrip() + f": {said}", command=command)
    return 128 + signum if isinstance(signum, int) else EXIT_INTERRUPTED


def _forget_unhandled_interrupt() -> None:
    """Let the status returned stand. CPython marks a KeyboardInterrupt that leaves code run by
    `exec` of a string as unhandled even when it is caught further up, and a Ctrl-C while a
    command imports a module late (torch, for `train`) can land in one: dataclasses build
    their methods so (early_stop.py takes those during the start). Under
    `python -m infra.cli.main` the interpreter then ends itself by SIGINT as it exits (-2 to
    a parent process, "Interrupt" to make) in place of 130: a third of the Ctrl-Cs sent
    during imports did (tests/infra/test_cli_usage_errors.py). Each `exec` of a string
    clears that mark as it starts (CPython 3.11-3.13); the console script never reads it."""
    exec("pass", {})  # noqa: S102
