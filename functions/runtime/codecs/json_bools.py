"""JSON true/false among numbers: numpy reads `[1, true, 3]` as `[1, 1, 3]`, so a boolean sent
where a number belongs would reach the model as 1 or 0 unless looked for.

Looking costs about as much as numpy's own conversion (a pass over every value: ~2 us for 64
values), so a body without a `true` or `false` literal anywhere, nearly every request, is not
looked into.
"""

from __future__ import annotations

_NESTING = (list, tuple)  # JSON arrays, and rows zipped from columns


def may_hold_bools(body: bytes) -> bool:
    """Whether JSON text `body` has a true or false literal anywhere (cheap: a byte search).
    A letter first: a one-byte search is a memchr (~0.1 us over 64 values), a four-byte one
    is not (~1 us each). Numbers never hold an 'r' or an 'f', so a body of numbers (nearly
    every one) is searched for neither literal: ~0.2 us, where both searches took ~1.8 us."""
    return (body.find(b"r") >= 0 and b"true" in body) or (body.find(b"f") >= 0 and b"false" in body)


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
