"""Plain numeric CSV chunks read in one C call: the chunk's rows as one JSON array, via orjson.

Most batch inputs are machine-written numbers. When a chunk holds nothing but digits, signs,
points, exponents, blanks, commas and line breaks, and every line has the header's field count,
its lines joined by commas form a JSON array of numbers, which orjson reads ~1.5x faster than
numpy's loadtxt. Every JSON number is also a Python float literal, and orjson rounds as float()
does (exactly; the tests compare them on halfway cases), with one exception handled here: the
integer `-0` comes back as 0, without its sign. Anything else (quotes, `nan`, `+1`, `.5`, empty
fields, ragged lines) gives None, and the caller takes a careful path that finds the bad rows.

`python -m functions.runtime.batch.numbers` serves `plain_numbers` over stdin/stdout for
`batch_parser.ParseWorker`: a request is HEADER + the chunk's bytes, the answer RESULT + the
float64 values (none when the chunk is not plain). No pickle: sizes, then raw bytes.
"""

from __future__ import annotations

import functools
import struct
import sys
from typing import BinaryIO

import numpy as np
import orjson

# Deleting these from a chunk must leave exactly its separators: one comma between fields, one
# line break between rows. Anything left over (a letter, a quote, a missing or extra field, a
# blank line) makes the chunk not plain.
NUMBER_BYTES = b"0123456789+-.eE \t"
# The integer -0, followed by what may follow a number in the joined array.
NEGATIVE_ZERO = (b"-0,", b"-0]", b"-0 ", b"-0\t")
HEADER = struct.Struct("<QII")  # chunk bytes, rows, columns
RESULT = struct.Struct("<Q")  # bytes of float64 values that follow; 0: not plain


@functools.lru_cache(maxsize=8)
def _separators(rows: int, columns: int) -> bytes:
    """What a plain chunk of `rows` lines of `columns` fields leaves after NUMBER_BYTES go."""
    return b"\n".join([b"," * (columns - 1)] * rows)


def plain_numbers(data: bytes, rows: int, columns: int) -> np.ndarray | None:
    """`data` (`rows` lines of `columns` fields) as float64, or None unless all plain numbers."""
    if rows == 0 or columns == 0:
        return None
    if data.translate(None, NUMBER_BYTES) != _separators(rows, columns):
        return None
    joined = b"[" + data.replace(b"\n", b",") + b"]"
    try:
        values = orjson.loads(joined)
    except orjson.JSONDecodeError:
        return None
    matrix = np.fromiter(values, dtype=np.float64, count=rows * columns)
    if not matrix.all() and any(zero in joined for zero in NEGATIVE_ZERO):
        return None  # float("-0") is -0.0; the JSON integer -0 came back as +0
    return matrix.reshape(rows, columns)


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer parse requests until `requests` ends (the worker process's loop)."""
    while header := requests.read(HEADER.size):
        size, rows, columns = HEADER.unpack(header)
        matrix = plain_numbers(requests.read(size), rows, columns)
        values = b"" if matrix is None else matrix.tobytes()
        answers.write(RESULT.pack(len(values)))
        answers.write(values)
        answers.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
