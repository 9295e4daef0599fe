"""The functions' log lines under `aiaas serve`, `invoke` and `batch`, as Lambda writes them.

In the cloud the template sets `LoggingConfig: LogFormat: JSON`, and Lambda's Python runtime
turns each record of the standard `logging` module into one JSON object: timestamp, level,
message, logger, the invocation's requestId, every field given as `extra` (the predict
function's `request_id`, model, version, ...) and, for an exception, errorType, errorMessage,
stackTrace and location. The application log level comes from `AWS_LAMBDA_LOG_LEVEL` (what
Lambda sets from `ApplicationLogLevel`). Locally nothing does that, so this module does, on the
`aiaas` loggers, when the first function starts; the lines go to stdout as Lambda's do.
`POWERTOOLS_LOG_LEVEL` is read too: the handlers logged through Powertools' Logger before.

`aiaas serve`'s own lines (its banner, that it stopped) and granian's are text for a person at
a terminal; with `AIAAS_LOG_FORMAT=json` (a container's log collector) they are JSON lines of
the same shape, so every line it writes parses.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from functions.runtime.errors import AiaasError

LOGGER = "aiaas"  # every handler's logger is this one or a child of it
DEFAULT_LEVEL = "INFO"  # Lambda's default application log level in JSON format
# LogRecord's own attributes: everything else on a record came in as `extra`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "aws_request_id",
    "taskName",
}
_installed: logging.Handler | None = None
_json_lines = False  # serve's own lines and granian's as JSON (AIAAS_LOG_FORMAT=json)
# In a worker of `aiaas serve --workers N`: every JSON line names it ("pid"), as the workers
# log the same lines (a load, a capture setting, an unload) with nothing else to tell them apart.
_worker_pid: int | None = None
SERVE_LOGGER = f"{LOGGER}.serve"


class LambdaJsonFormatter(logging.Formatter):
    """A record as the JSON line Lambda's runtime writes for it (`LogFormat: JSON`)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        if _worker_pid is not None:
            line["pid"] = _worker_pid
        request_id = getattr(record, "aws_request_id", None)
        if request_id:
            line["requestId"] = request_id
        if record.exc_info and record.exc_info[0] is not None:
            kind, error, trace = record.exc_info
            line["errorType"] = kind.__name__
            line["errorMessage"] = str(error)
            line["stackTrace"] = traceback.format_tb(trace)
            line["location"] = f"{record.pathname}:{record.funcName}:{record.lineno}"
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in line:
                line[key] = value
        return orjson.dumps(line, default=str).decode()


def level_from(env: Mapping[str, str]) -> int:
    """The application log level a function's environment asks for (Lambda's names too)."""
    name = env.get("AWS_LAMBDA_LOG_LEVEL") or env.get("POWERTOOLS_LOG_LEVEL") or DEFAULT_LEVEL
    name = {"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}.get(
        name.upper(), name.upper()
    )
    # Not getLevelName(name): its name -> number case is kept only for old code (typeshed marks
    # it deprecated; mypy --enable-error-code deprecated on 3.12/3.13 flags it).
    return logging.getLevelNamesMapping().get(name, logging.INFO)


class _Stdout(logging.StreamHandler):  # type: ignore[type-arg]
    """stdout as it was at install, its records dropped once it is closed: an in-process
    caller's captured stdout (a test's), closed since, made every later record a "Logging
    error" with a traceback on stderr, where the next caller's own lines go."""

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(self.stream, "closed", False):
            super().emit(record)


def install(env: Mapping[str, str]) -> None:
    """Write the `aiaas` loggers' records as Lambda's JSON lines on stdout, and only there (as
    Powertools' Logger did): once a process, a later call only changes the level."""
    global _installed
    logger = logging.getLogger(LOGGER)
    logger.setLevel(level_from(env))
    if _installed is None:
        _installed = _Stdout(sys.stdout)
        _installed.setFormatter(LambdaJsonFormatter())
        logger.addHandler(_installed)
        logger.propagate = False


def serve_format(env: Mapping[str, str]) -> str:
    """`AIAAS_LOG_FORMAT`: `text` (the default) or `json`, for serve's own lines and granian's."""
    raw = env.get("AIAAS_LOG_FORMAT", "")
    value = raw.strip().lower() or "text"
    if value not in ("text", "json"):
        raise AiaasError(f"AIAAS_LOG_FORMAT must be text or json; got {raw!r}")
    return value


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr as it is when a record comes (a test's capture replaces it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def use_format(value: str) -> None:
    """Write serve's own lines (`say`) and granian's as `value` from now on, in this process
    and the workers it forks. With json, Python's warnings (`warnings.warn`, numpy's
    RuntimeWarning) too, as lines of logger `py.warnings` on stderr: they were two lines of
    text there, the warning and its source line, among the JSON ones."""
    global _json_lines
    _json_lines = value == "json"
    logging.captureWarnings(_json_lines)
    warned = logging.getLogger("py.warnings")
    if _json_lines and not warned.handlers:
        handler = _Stderr()
        handler.setFormatter(LambdaJsonFormatter())
        warned.addHandler(handler)
        warned.propagate = False


def say(message: str, level: int = logging.INFO, *, stderr: bool = False) -> None:
    """One of serve's own lines: as text, or as a JSON line of the functions' shape."""
    stream = sys.stderr if stderr else sys.stdout
    if _json_lines:
        record = logging.LogRecord(SERVE_LOGGER, level, __file__, 0, message, None, None)
        message = LambdaJsonFormatter().format(record)
    print(message, file=stream, flush=True)


def granian_config() -> dict[str, Any] | None:
    """granian's `log_dictconfig`: its lines (a worker's unexpected exit) as JSON, or None for
    its own text format."""
    if not _json_lines:
        return None
    json_formatter = {"()": LambdaJsonFormatter}
    return {"formatters": {"generic": json_formatter, "access": json_formatter}}


def name_worker() -> None:
    """In a worker of several: its JSON lines carry its pid from now on (`serve --workers N`;
    granian's and serve's lines about a worker name it by the same pid)."""
    global _worker_pid
    _worker_pid = os.getpid()
