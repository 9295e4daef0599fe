"""Strict reading of a manifest's JSON fields: a wrong value is a `ManifestError` naming its path.

Shared by the manifest itself and the listing of a version's files, so every field of
`manifest.json` is refused the same way (`inputs[0].dtype`, `files[2].sha256`, ...).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from functions.runtime.errors import ManifestError

MISSING: Any = object()  # a sentinel: "no default" (None is a real default for optional fields)
T = TypeVar("T")

_SHA256 = re.compile(r"[0-9a-f]{64}")


def mapping(value: object, where: str) -> Mapping[str, Any]:
    """`value` if it is a JSON object, else a ManifestError naming `where`."""
    if not isinstance(value, Mapping):
        raise ManifestError(f"manifest field '{where}' must be an object")
    return value


def get(data: Mapping[str, Any], key: str, kind: type[T], where: str, default: Any = MISSING) -> T:
    """`data[key]` checked to be a `kind`; `default` when absent or null, if there is one."""
    path = f"{where}.{key}" if where else key
    value = data.get(key, MISSING)
    if value is MISSING or (value is None and default is not MISSING):
        if default is MISSING:
            raise ManifestError(f"manifest is missing required field '{path}'")
        return default  # type: ignore[no-any-return]
    # bool is an int in Python; a manifest saying `"size": true` is still wrong.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ManifestError(f"manifest field '{path}' must be of type {kind.__name__}")
    return value


def choice(value: str, allowed: tuple[str, ...], path: str) -> str:
    """`value` if it is one of `allowed`, else a ManifestError listing them."""
    if value not in allowed:
        raise ManifestError(
            f"manifest field '{path}' is {value!r}; expected one of {list(allowed)}"
        )
    return value


def sha256(value: str, path: str) -> str:
    """`value` if it is a sha256 as manifests spell it (64 lowercase hex digits)."""
    if not _SHA256.fullmatch(value):
        raise ManifestError(f"manifest field '{path}' must be 64 lowercase hex digits")
    return value


def index_rows(spec: Mapping[str, Any], where: str) -> int:
    """An integer input's `index_rows` (0: not an embedding's index), else a ManifestError."""
    rows = get(spec, "index_rows", int, where, 0)
    if rows < 0 or (rows and not get(spec, "dtype", str, where).startswith(("int", "uint"))):
        raise ManifestError(
            f"manifest field '{where}.index_rows' must be a table's row count (0 or more) on an "
            "integer input"
        )
    return rows


def string_fields(spec: Mapping[str, Any], where: str, dtype: str) -> tuple[str | None, bool]:
    """A string input's `missing` category and `strip`, else a ManifestError (other types)."""
    missing = get(spec, "missing", str, where, None)
    strip = get(spec, "strip", bool, where, False)
    for key, given in (("missing", missing is not None), ("strip", strip)):
        if given and dtype != "string":
            raise ManifestError(f"manifest field '{where}.{key}' is for string inputs only")
    return missing, strip


def none_category(spec: Mapping[str, Any], where: str, dtype: str, missing: str | None) -> bool:
    """A string input's `none_category` (an input without `missing`), else a ManifestError."""
    found = get(spec, "none_category", bool, where, False)
    if found and (dtype != "string" or missing is not None):
        raise ManifestError(
            f"manifest field '{where}.none_category' is for string inputs without 'missing'"
        )
    return found


def na_categories(spec: Mapping[str, Any], where: str, missing: str | None) -> tuple[str, ...]:
    """A string input's `na_categories` (strings), for an input with a `missing` category only."""
    found = get(spec, "na_categories", list, where, [])
    if found and missing is None:
        raise ManifestError(f"manifest field '{where}.na_categories' is for inputs with 'missing'")
    if not all(isinstance(item, str) for item in found):
        raise ManifestError(f"manifest field '{where}.na_categories' must list strings")
    return tuple(found)


def float_gaps(spec: Mapping[str, Any], where: str, dtype: str) -> bool:
    """A float input's `gaps` (it takes missing values, not infinity), else a ManifestError."""
    gaps = get(spec, "gaps", bool, where, False)
    if gaps and not dtype.startswith("float"):
        raise ManifestError(f"manifest field '{where}.gaps' is for float inputs only")
    return gaps


def repeated(values: Sequence[str]) -> str | None:
    """The first (in sorted order) of the values `values` holds more than once, if any."""
    twice = sorted(value for value, times in Counter(values).items() if times > 1)
    return twice[0] if twice else None


def check_labels(labels: Sequence[str]) -> None:
    """ValueError when two classes have one label: predictions, batch's `pred_label`, compare's
    agreement and drift's label shares could not tell them apart (`--labels a,a,b` was taken,
    where `--features a,a,b` was refused). Refused when written; a stored manifest that has
    them (published before) is still read."""
    twice = repeated(labels)
    if twice is not None:
        raise ValueError(
            f"class labels must be unique; {twice!r} appears twice (two classes would answer "
            "the same label)"
        )
