"""Lone UTF-16 surrogates in JSON text, which no Unicode text holds.

A JSON string may escape half of a UTF-16 surrogate pair alone (`"\\ud83d"`): what a
JavaScript `text.slice(0, n)` leaves of an emoji cut in two, written by `JSON.stringify`.
orjson refuses it (strict JSON is Unicode text); Python's `json`, the fallback that reads NaN and
wide integers, reads it as a `str` holding the half, which no UTF-8 encoder takes: the
tokenizers library, onnxruntime's string tensors and orjson's writers fail on it. So a line
read by that fallback is looked through for one (only when it escapes a surrogate at all).
"""

from __future__ import annotations

import re

# `\uD800` ... `\uDFFF`: an escape of a surrogate, paired or not.
_ESCAPED = re.compile(r"\\u[dD][89a-fA-F]")


def lone_surrogate(text: str, data: object) -> str | None:
    """The first string of `data` (values and keys, `json.loads(text)`'s) holding a lone
    surrogate, else None; `text` is read first, so a line escaping none costs one search."""
    if _ESCAPED.search(text) is None:
        return None
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def surrogate_reason(found: str) -> str:
    """Why a line holding `found` (from `lone_surrogate`) is no text to read."""
    at = next(i for i, c in enumerate(found) if 0xD800 <= ord(c) <= 0xDFFF)
    return (
        f"not valid JSON: the string {found[:40]!r} holds \\u{ord(found[at]):04x} alone "
        "(half of a UTF-16 surrogate pair, as a text cut inside an emoji leaves), which is "
        "no Unicode character; write the whole pair or remove the half"
    )
