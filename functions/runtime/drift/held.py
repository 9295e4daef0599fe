"""What holding a request costs the drift monitor while a version's baseline is read
(`DriftMonitor._hold`): the bytes of its inputs and outputs, a text cell by its characters.
An object array's `nbytes` counts 8 bytes a cell whatever it holds: four 1 MB strings read as
32 bytes, so a text model's requests were held without bound by a cap of 16 MiB."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def held_bytes(*arrays: Mapping[str, np.ndarray]) -> int:
    size = 0
    for named in arrays:
        for array in named.values():
            size += array.nbytes
            if array.dtype == object:
                size += sum(len(cell) for cell in array.flat if isinstance(cell, str | bytes))
    return size
