"""Reading captured lines back: for `aiaas capture export`, `aiaas compare` and retraining.

Lines are separated by `\\n` only (a JSON string may hold U+2028, which `str.splitlines`
would split on): read objects as bytes and split on b"\\n".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import orjson

from functions.runtime import names
from functions.runtime.capture.buffer import capture_prefix
from functions.runtime.errors import BadRequest
from functions.runtime.refs import version_sort_key
from functions.runtime.store import ObjectStore


def parse_since(text: str | None) -> date | None:
    """`--since YYYY-MM-DD` (a UTC day), or None."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"since must be a date as YYYY-MM-DD; got {text!r}") from None


def capture_keys(
    store: ObjectStore, model: str, version: str | None = None, since: date | None = None
) -> list[str]:
    """The capture objects of `model` (one version, or all), of days from `since` on, in
    order of version, day and name (names start with the time they were written)."""
    prefix = capture_prefix(names.model_name(model))
    if version:
        versions = [names.version_name(version)]
    else:  # numerically: as listed (text), version 10 came before version 2
        versions = sorted(store.list_dirs(prefix), key=version_sort_key)
    keys: list[str] = []
    for found in versions:
        for day in store.list_dirs(f"{prefix}/{found}"):
            if not _is_day(day) or (since is not None and day < since.isoformat()):
                continue  # a folder no capture writes (`notes`: after "2026-12-01" as text)
            keys.extend(sorted(store.list_keys(f"{prefix}/{found}/{day}")))
    return keys


def _is_day(name: str) -> bool:
    try:
        date.fromisoformat(name)
    except ValueError:
        return False
    return len(name) == 10  # 2026-12-05, as the buffer names them; not 20261205


def captured_lines(
    store: ObjectStore,
    model: str,
    *,
    keys: list[str] | None = None,
    bad: list[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Every captured line of `model` (see `capture_keys`; or of the objects `keys`, listed
    once: a CSV export reads them twice, and an object written between its passes with a
    column the header pass had not seen failed the export), parsed. A line that is no JSON
    object (a truncated copy, a stray file) is named in `bad` and skipped (it failed the whole
    export with a traceback), or without `bad` a BadRequest naming its object and line."""
    for key in capture_keys(store, model) if keys is None else keys:
        for number, raw in enumerate(store.get_bytes(key).split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                line = orjson.loads(raw)
                why = "" if isinstance(line, dict) else "not a JSON object"
            except orjson.JSONDecodeError as exc:
                why = f"not JSON ({exc})"
            if not why:
                why = _another_version(key, line)
            if not why:
                yield line
            elif bad is None:
                raise BadRequest(f"{key} line {number} is no captured line: {why}")
            else:
                bad.append(f"{key} line {number}: {why}")


def _another_version(key: str, line: dict[str, Any]) -> str:
    """Why a line is not as the predict function wrote it, by the version it names: a line
    names the version that answered, in its own `version`, in its answer's (`version`, OIP
    `model_version`) and in its object's folder (capture/MODEL/VERSION/DAY/...). A line edited
    since (its `version` changed) was exported as the other version's answer, inside an export
    of `--version` its folder's."""
    folder = key.rsplit("/", 3)[-3]
    said = line.get("version")
    if str(said) != folder:
        return f"it names version {said!r}, not {folder!r}, whose folder holds it"
    answer = line.get("response")
    named = answer.get("version", answer.get("model_version")) if isinstance(answer, dict) else None
    if named is not None and str(named) != folder:
        return f"its answer names version {named!r}, not {folder!r}, which the line names"
    return ""
