"""The lines a command writes as it ends on an error or a stop signal: text, or with
`AIAAS_LOG_FORMAT=json` one JSON object of the functions' shape (infra/local/lambda_logs.py).

A pod's logs go to a JSON pipeline (Loki, Elastic): `aiaas serve` refused at its start (a bad
setting, an unreadable store, a port taken, a bad flag) wrote its reason as one text line,
which the pipeline dropped or mangled, and it is the line the operator needs. The format is
read from the environment here, not from the checked setting: a refusal may come before it
is checked, and a bad value (`AIAAS_LOG_FORMAT=yaml`) is itself refused in text.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from collections.abc import Sequence
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
        from infra.local.lambda_logs import LambdaJsonFormatter

        info = (type(exc), exc, exc.__traceback__) if exc is not None else None
        record = logging.LogRecord(logger_name(command), level, __file__, 0, text, None, info)
        record.__dict__.update(fields)
        text = LambdaJsonFormatter().format(record)
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
    one (batch; any while the CLI imports, launch.py) sets `signum`: 128 + it."""
    signum = getattr(exc, "signum", None)
    if command == "serve" and signum == signal.SIGTERM:
        # A serve stopped before it serves, as once it serves (docs/kubernetes.md).
        write("aiaas serve: stopped", command=command, level=logging.INFO, stream=sys.stdout)
        return 0
    said = f"interrupted ({exc})" if signum else "interrupted"
    write(f"aiaas {command or ''}".rstrip() + f": {said}", command=command)
    return 128 + signum if isinstance(signum, int) else EXIT_INTERRUPTED
