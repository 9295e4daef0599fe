"""How a quality metric reads wherever a person reads it: one name and one number format.

Training stores a classifier's macro F1 under the key `f1` (manifests in existing stores hold
it, and specs monitor it by that name); `aiaas compare` computes the same macro F1 as
`macro_f1`. A card saying "f1" beside a compare report saying "macro_f1" read as two metrics.
Stored keys stay as they are; what is shown goes through here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Stored key -> the name a person reads (the one `aiaas compare` and its --max-drop use).
SHOWN_NAMES = {"f1": "macro_f1"}


def metric_name(key: str) -> str:
    """The shown name of a stored metric key: `f1` -> `macro_f1`, others as they are."""
    return SHOWN_NAMES.get(key, key)


def stored_key(name: str) -> str:
    """The stored key of a metric a person names either way: `macro_f1` -> `f1`."""
    return next((key for key, shown in SHOWN_NAMES.items() if shown == name), name)


def metric_value(value: float | None) -> str:
    """One metric's number as every report prints it (4 significant digits; n/a for None)."""
    return "n/a" if value is None else f"{value:.4g}"


def is_metric(key: str, value: Any) -> bool:
    """A number worth showing as a metric: not a count of rows, not a flag."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and not key.startswith("rows")


def metrics_text(values: Mapping[str, Any], keys: Sequence[str] | None = None) -> str:
    """`accuracy=0.9565 macro_f1=0.9659`: the metrics in `values`, all or `keys` in order."""
    chosen = values if keys is None else [key for key in keys if key in values]
    return " ".join(
        f"{metric_name(key)}={metric_value(values[key])}"
        for key in chosen
        if is_metric(key, values[key])
    )


def share_text(share: float) -> str:
    """A share of rows in tenths of a percent; one under 0.1% but not none is `<0.1%` (3 rows
    of 10,000 read "0.0% of the rows", as if the class had none)."""
    return "<0.1%" if 0 < share < 0.001 else f"{share:.1%}"
