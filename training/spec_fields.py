"""Strict reading of one mapping in a job spec: every error names the full field path.

`Fields(data, "export")` hands out typed values (`fields.integer("opset", 18, minimum=7)`) and
`fields.done()` rejects any key nobody asked for, so a typo (`learnig_rate`) is an error, not a
silently ignored setting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from training.errors import SpecError

_REQUIRED = object()


class Fields:
    """Typed accessors over one spec mapping; `where` is its path in the spec (`""` at the top)."""

    def __init__(self, data: object, where: str = "") -> None:
        if data is None and not where:  # an empty file, or only comments
            raise SpecError("the spec is empty; it needs at least name, task, dataset and recipe")
        if not isinstance(data, Mapping):
            raise SpecError(f"spec field '{where or 'spec'}' must be a mapping of settings")
        self.data: Mapping[str, Any] = data
        self.where = where
        self.seen: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def raw(self, key: str, default: Any = _REQUIRED) -> Any:
        self.seen.add(key)
        if key not in self.data or self.data[key] is None:
            if default is _REQUIRED:
                raise SpecError(f"spec is missing required field '{self.path(key)}'")
            return default
        return self.data[key]

    def text(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self.raw(key, default)
        if value is not default and not isinstance(value, str):
            raise SpecError(
                f"spec field '{self.path(key)}' must be a string; got {value!r}{_unquoted(value)}"
            )
        return value

    def choice(self, key: str, allowed: Sequence[str], default: Any = _REQUIRED) -> Any:
        value = self.text(key, default)
        if value is not default and value not in allowed:
            raise SpecError(
                f"spec field '{self.path(key)}' is {value!r}; expected one of {list(allowed)}"
            )
        return value

    def integer(
        self,
        key: str,
        default: Any = _REQUIRED,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> Any:
        value = self.raw(key, default)
        if value is default:
            return value
        if not isinstance(value, int) or isinstance(value, bool):
            raise SpecError(f"spec field '{self.path(key)}' must be an integer; got {value!r}")
        if minimum is not None and value < minimum:
            raise SpecError(f"spec field '{self.path(key)}' must be >= {minimum}; got {value}")
        if maximum is not None and value > maximum:
            raise SpecError(f"spec field '{self.path(key)}' must be <= {maximum}; got {value}")
        return value

    def number(
        self,
        key: str,
        default: Any = _REQUIRED,
        *,
        minimum: float | None = None,
        below: float | None = None,
        positive: bool = False,
    ) -> Any:
        value = self.raw(key, default)
        if value is default:
            return value
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise SpecError(f"spec field '{self.path(key)}' must be a number; got {value!r}")
        if not math.isfinite(value):  # YAML's .nan passed every bound below (NaN losses)
            raise SpecError(f"spec field '{self.path(key)}' must be a finite number; got {value}")
        if positive and value <= 0:
            raise SpecError(f"spec field '{self.path(key)}' must be > 0; got {value}")
        if minimum is not None and value < minimum:
            raise SpecError(f"spec field '{self.path(key)}' must be >= {minimum}; got {value}")
        if below is not None and value >= below:
            raise SpecError(f"spec field '{self.path(key)}' must be < {below}; got {value}")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise SpecError(f"spec field '{self.path(key)}' must be true or false; got {value!r}")
        return value

    def strings(self, key: str) -> tuple[str, ...] | None:
        value = self.raw(key, None)
        if value is None:
            return None
        if not isinstance(value, list) or not value:
            raise SpecError(f"spec field '{self.path(key)}' must be a non-empty list of strings")
        # The item and YAML's reading of it: column names 2019 or on/off unquoted are a number
        # and booleans, where the list's refusal named neither.
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise SpecError(
                    f"spec field '{self.path(key)}[{i}]' must be a string; got "
                    f"{item!r}{_unquoted(item)}"
                )
        return tuple(value)

    def dims(self, key: str) -> tuple[int, ...] | None:
        value = self.raw(key, None)
        if value is None:
            return None
        ok = isinstance(value, list) and value
        if not ok or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
        ):
            raise SpecError(f"spec field '{self.path(key)}' must be a list of positive integers")
        return tuple(value)

    def section(self, key: str, default: Any = _REQUIRED) -> Fields:
        return Fields(self.raw(key, default), self.path(key))

    def done(self) -> None:
        """Reject keys that no accessor read: they are typos or settings this version lacks."""
        # YAML keys may be numbers, booleans or null (`5:`, `on:`): sorted by their text, not
        # compared with the strings (a TypeError); a string (a typo) is named first
        unknown = sorted(set(self.data) - self.seen, key=lambda k: (not isinstance(k, str), str(k)))
        if not unknown:
            return
        key = unknown[0]
        hint = ""
        if isinstance(key, bool) or key is None:
            word = "a boolean" if isinstance(key, bool) else "null"
            hint = f" (YAML reads that key unquoted as {word}; quote it)"
        raise SpecError(
            f"spec field '{self.path(str(key))}' is unknown{hint}; "
            f"expected one of {sorted(self.seen)}"
        )


def _unquoted(value: object) -> str:
    """Why YAML gave `value` where a string was meant (`3`, `yes`, `on`, `1.0`, `~` unquoted)."""
    if isinstance(value, bool | int | float):
        kind = "boolean" if isinstance(value, bool) else "number"
        return f": YAML reads it unquoted as a {kind}; quote it"
    if value is None:
        return ": YAML reads it unquoted as null; quote it"
    return ""
