"""JSON true/false among numbers: numpy reads `[1, true, 3]` as `[1, 1, 3]`, so a boolean sent
where a number belongs would reach the model as 1 or 0 unless looked for.

Looking costs about as much as numpy's own conversion (a pass over every value: ~2 us for 64
values), so a body without a `true` or `false` literal anywhere, nearly every request, is not
looked into.
"""

from __future__ import annotations

_NESTING = (list, tuple)  # JSON arrays, and rows zipped from columns


def may_hold_bools(body: bytes) -> bool:
    """Whether JSON text `body` has a true or false literal anywhere (cheap: a byte search)."""
    return b"true" in body or b"false" in body


def holds_bool(value: object) -> bool:
    """Whether nested JSON lists (or rows zipped into tuples) `value` hold a true or false."""
    if not isinstance(value, _NESTING):
        return type(value) is bool
    kinds = set(map(type, value))  # one C pass over a row
    if bool in kinds:
        return True
    return not kinds.isdisjoint(_NESTING) and any(
        holds_bool(item) for item in value if isinstance(item, _NESTING)
    )


def json_text(value: object) -> str:
    """`value` as the JSON caller wrote it, for a message: true, not Python's True."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
