"""The answer's size, checked on the output arrays before any of it is encoded.

A graph can size its output from an input's value (ConstantOfShape, Expand, Tile, Range fed
from the request: `{"inputs": [[2.5e8]]}` answered a 1 GB tensor). The response limit (AWS
Lambda's 6 MiB, which `aiaas serve` keeps too) refused it only once encoded: 18.5 s of JSON
and a peak of 5.1 GB resident for that one request, where the tensor itself is 1 GB; at 1e9
the encoding alone would ask for ~20 GB. Every encoding (JSON numbers, OIP binary base64)
takes at least a byte a value, so an answer of more values than the limit has bytes can
never be sent: it is refused here, one `.size` read an output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from functions.runtime.errors import ResponseTooLarge

if TYPE_CHECKING:  # not at run time: the health function imports the limit, never numpy
    import numpy as np

    from functions.runtime.model import LoadedModel

RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024  # AWS Lambda's, for a synchronous invoke


def check_answer_size(model: LoadedModel, outputs: Mapping[str, np.ndarray]) -> None:
    """ResponseTooLarge when `outputs` hold more values than a response has bytes."""
    values = 0
    for array in outputs.values():
        values += array.size
    if values > RESPONSE_LIMIT_BYTES:
        shapes = ", ".join(f"{name} {list(a.shape)}" for name, a in outputs.items())
        raise ResponseTooLarge(
            f"model {model.ref} answered {values} values ({shapes}), more than a response can "
            f"carry ({RESPONSE_LIMIT_BYTES} bytes, AWS Lambda's limit, at least a byte a "
            "value): ask for less in one request (fewer rows, fewer outputs, or smaller "
            "values for an input that sizes the answer)"
        )
