"""The string inputs a model `aiaas train` exported reads less the blanks around a value.

Training strips a text column's cells (`TensorSpec.strip`: " Nice" is "Nice") and says so in
its manifest, and in the ONNX file's metadata (`aiaas.strip`: a JSON list of the input names),
so that `aiaas publish` of the file alone (another store, another name, an int8 variant)
serves it as it was trained: without it " Paris" was a category the model never saw.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

METADATA_KEY = "aiaas.strip"


def stripped_inputs(metadata: Mapping[str, str]) -> tuple[str, ...] | None:
    """The input names the file's metadata says are stripped; None where it says nothing.
    ValueError for an entry that is no JSON list of names."""
    raw = metadata.get(METADATA_KEY)
    if raw is None:
        return None
    try:
        names = json.loads(raw)
    except ValueError:
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{METADATA_KEY} is not a JSON list of input names: {raw[:80]!r}")
    return tuple(names)
