"""The 400 for a request body that is not JSON, with a hint where the cause is a common one."""

from __future__ import annotations

import re

from functions.runtime.errors import BadRequest

# Python's json.dumps (so `requests.post(json=...)` and httpx) writes NaN and infinities as
# these bare words, which JSON does not have; the parser's own message only gives a position.
# They stay refused: bodies are kept as sent (data capture) and read again by strict parsers
# (shadow replay, capture comparison), and JSON's missing value, null, does the same job.
_NON_FINITE = re.compile(rb"(?<![\"\w])-?(?:NaN|Infinity)(?![\"\w])")


def not_json(exc: Exception, body: bytes | memoryview) -> BadRequest:
    """The error for `body`, which the JSON parser refused with `exc` (only called then)."""
    try:
        bytes(body).decode("utf-8")
    except UnicodeDecodeError as bad:  # orjson said "str is not valid UTF-8: surrogates not
        # allowed: line 1 column 1 (char 0)" of a Latin-1 byte anywhere in the body
        return BadRequest(
            f"request body is not UTF-8 text (byte {bad.start + 1} is 0x{bad.object[bad.start]:02x});"
            " JSON is sent as UTF-8"
        )
    hint = ""
    if _NON_FINITE.search(bytes(body)):
        hint = (
            " (NaN and Infinity are not JSON: send null for a missing value, which a model "
            "published with --allow-nonfinite reads as NaN; OIP binary tensors carry infinities)"
        )
    return BadRequest(f"request body is not valid JSON: {exc}{hint}")
