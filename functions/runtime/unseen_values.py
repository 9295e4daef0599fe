"""A refusal at a category encoder, said in the caller's terms: which input (the column they
sent), which of its values the model was not trained on, and a few of the categories it knows.

onnxruntime says only `OneHotEncoder node. Name:'OneHotEncoder1' ... Unknown Category`; with
20 string columns a caller cannot tell which to fix. The node is looked up in the model's
encoders (`category_graph.encoders`, read once per model on its first refusal, nothing on the
success path) and the request's values of the input feeding it are checked against its
categories. Where the graph does not show for certain which input feeds the node, or no value
of that input is outside its categories, the reason gives the node's categories only: it
never names a column on a guess. User values are cut short; lists show a few and the count.
"""

from __future__ import annotations

import mmap
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from functions.runtime.ort_errors import ModelRefused

if TYPE_CHECKING:  # the graph walk itself is imported on a refusal (or a model in memory) only
    from functions.runtime.category_graph import Encoder, Source

SHOWN_VALUES = 3  # of the unseen values a request held
SHOWN_CATEGORIES = 5
VALUE_CHARS = 40  # a longer value (or name) is cut to this many characters
HINT = (
    "scikit-learn's OneHotEncoder(handle_unknown='ignore') exports a model that encodes an "
    "unseen category as zeros"
)


class CategoryEncoders:
    """A loaded model's encoders by node name: read from its file on the first refusal at an
    encoder (a model in memory: read at load, as its bytes go once the session exists)."""

    def __init__(self, source: Path | bytes) -> None:
        self._path: Path | None = None
        self._found: dict[str, Encoder] | None = None
        self._lock = threading.Lock()
        if isinstance(source, Path):
            self._path = source
        else:
            self._found = _read(source)

    def explain(self, refused: ModelRefused, feeds: Mapping[str, np.ndarray]) -> ModelRefused:
        """`refused` said in the caller's terms when an encoder refused; else `refused`."""
        from functions.runtime.category_graph import ENCODER

        if refused.op != ENCODER or "Unknown Category" not in refused.reason:
            return refused
        encoder = self._encoders().get(refused.node)
        if encoder is None:
            return refused
        return ModelRefused(unseen_reason(encoder, feeds), refused.op, refused.node)

    def _encoders(self) -> dict[str, Encoder]:
        with self._lock:
            if self._found is None:
                self._found = _read_file(self._path) if self._path is not None else {}
            return self._found


def _read(buf: bytes | mmap.mmap) -> dict[str, Encoder]:
    from functions.runtime.category_graph import encoders, imports_ml_ops

    try:
        if not imports_ml_ops(buf):  # most models: no encoder; weights stepped over, not read
            return {}
        return encoders(buf)
    except (ValueError, IndexError):  # onnxruntime loaded it; a graph this walk cannot read
        return {}


def _read_file(path: Path) -> dict[str, Encoder]:
    try:
        with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return _read(m)
    except (OSError, ValueError):  # gone from the cache since it was loaded, or empty
        return {}


def unseen_reason(encoder: Encoder, feeds: Mapping[str, np.ndarray]) -> str:
    """Which input's values are not among the encoder's categories, or its categories alone."""
    from functions.runtime.category_graph import ENCODER, MISSING_CATEGORY

    knows = _listed(encoder.categories, SHOWN_CATEGORIES)
    known = f"(it knows {len(encoder.categories)}: {knows})"
    found = _values(encoder.source, feeds) if encoder.source is not None else None
    unseen = _unseen(found[1], encoder.categories) if found is not None else []
    if found is None or not unseen:
        return (
            f"{ENCODER} {_cut(encoder.node)!r} was given a category the model was not trained on "
            f"{known}; {HINT}"
        )
    what = _listed(unseen, SHOWN_VALUES)
    verb = "is not a category" if len(unseen) == 1 else "are not categories"
    # A null (or an empty CSV cell) for an input whose other column learnt gaps is sent as "nan":
    # the refusal named "nan", a value the caller never sent (rev19 6).
    gap = (
        f" ({MISSING_CATEGORY!r} is how a null or an empty cell is sent: this column was trained "
        "on none; send one of its categories)"
        if MISSING_CATEGORY in unseen
        else ""
    )
    return f"{found[0]}: {what} {verb} the model was trained on {known}{gap}; {HINT}"


def _values(source: Source, feeds: Mapping[str, np.ndarray]) -> tuple[str, np.ndarray] | None:
    """(the input, or input and column, named for the caller; its values in the request)."""
    arrays = [feeds.get(name) for name in source.inputs]
    if any(array is None or array.ndim > 2 for array in arrays):
        return None
    widths = [1 if a.ndim < 2 else a.shape[1] for a in arrays if a is not None]
    if source.column is None:
        name, array = source.inputs[0], arrays[0]
        if len(arrays) != 1 or array is None:
            return None
        return f"input {_cut(name)!r}", array.reshape(-1)
    column = source.column + sum(widths) if source.column < 0 else source.column
    for name, array, width in zip(source.inputs, arrays, widths, strict=True):
        if array is not None and 0 <= column < width:
            values = array.reshape(-1) if array.ndim < 2 else array[:, column]
            where = f"input {_cut(name)!r}" + (f", column {column}" if width > 1 else "")
            return where, values
        column -= width
    return None


def _unseen(values: np.ndarray, categories: Sequence[str | int]) -> list[str | int]:
    """The distinct values not among `categories`, in the order the request holds them."""
    if not categories:
        return []
    if isinstance(categories[0], int):
        try:
            with np.errstate(invalid="ignore"):
                values = values.astype(np.int64)  # as the graph's Cast would
        except (TypeError, ValueError):
            return []
        known: set[object] = set(categories)
        return [v for v in dict.fromkeys(values.tolist()) if v not in known]
    known = set(categories)
    distinct = dict.fromkeys(_text(v) for v in values.tolist())
    return [v for v in distinct if v not in known]


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else str(value)


def _listed(items: Sequence[str | int], shown: int) -> str:
    head = ", ".join(repr(_cut(v)) if isinstance(v, str) else str(v) for v in items[:shown])
    rest = len(items) - shown
    return f"{head} and {rest} more" if rest > 0 else head


def _cut(text: str) -> str:
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 3] + "..."
