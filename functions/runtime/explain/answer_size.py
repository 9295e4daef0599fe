"""How big an explanation may be, checked before any model run.

Kernel SHAP explains every value of the explained output: a classifier's few class scores, or
a segmentation map's value per pixel and class. The second made one request's answer tens of
megabytes (a 413, but only once computed) and its coalition values gigabytes: a 128x128 map
of 4 classes, 5.3 GB resident and 10.7 s for a request of 1 MB.
"""

from __future__ import annotations

from functions.runtime.errors import InvalidInput

# An explanation's attributions (rows x players x explained outputs) and a row's coalition
# values (coalitions x outputs, float64) at most: one attribution takes ~10-20 bytes of JSON,
# so past MAX_ATTRIBUTIONS no answer fits the 6 MiB response; a segmentation map's 65,536
# outputs held 1.1 GB of coalition values a row (and its answer was a 413 only once computed).
MAX_ATTRIBUTIONS = 400_000
MAX_COALITION_BYTES = 256 * 1024 * 1024


def check_size(rows: int, players: int, outputs: int, coalitions: int) -> None:
    """A 422 with the numbers, before the explanation's model runs, when no answer could hold it or a
    row's coalition values would not fit in memory: an output of many values (a per-pixel
    map) is explained whole, one attribution per value and player."""
    attributions = rows * players * outputs
    held = coalitions * outputs * 8
    if attributions <= MAX_ATTRIBUTIONS and held <= MAX_COALITION_BYTES:
        return
    raise InvalidInput(
        f"this explanation would hold {attributions:,} attributions ({rows} row(s) x "
        f"{players:,} features or patches x {outputs:,} output values) and "
        f"{held / 2**20:,.0f} MiB of coalition values a row; at most {MAX_ATTRIBUTIONS:,} fit "
        "an answer: explain fewer rows, a larger --patch (an image), or a model that answers "
        "a few scores a row rather than a value per pixel"
    )
