"""The string inputs whose values reach a scikit-learn OneHotEncoder fit on gaps (read from the
graph at publish): a null or a CSV gap there is that encoder's missing category, "nan"
(`TensorSpec.missing`), and the gap spellings it learnt as categories of their own are kept
(`TensorSpec.na_categories`); `category_graph.py` reads the encoders."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from functions.runtime.category_graph import (
    ENCODER,
    MISSING_CATEGORY,
    missing_categories,
    none_category_inputs,
)
from functions.runtime.codecs.nulls import na_categories
from functions.runtime.manifest import TensorSpec

if TYPE_CHECKING:
    import onnx


def missing_category_inputs(
    proto: onnx.ModelProto, inputs: tuple[TensorSpec, ...]
) -> tuple[TensorSpec, ...]:
    """String inputs a scikit-learn OneHotEncoder fit on gaps reads (skl2onnx exports NaN's
    category as "nan"): a missing value there is sent as that category, as scikit-learn
    encodes it, where "" (an empty CSV cell) is a category it never saw."""
    if not any(spec.dtype == "string" for spec in inputs) or not any(
        node.op_type == ENCODER for node in proto.graph.node
    ):
        return inputs
    buf = proto.SerializeToString()
    found = {
        name: {na_categories(MISSING_CATEGORY, texts) for texts in learnt}
        for name, learnt in missing_categories(buf).items()
    }
    nones = none_category_inputs(buf)
    return tuple(_read(spec, found, nones) for spec in inputs)


def _read(spec: TensorSpec, found: dict[str, set[tuple[str, ...]]], nones: set[str]) -> TensorSpec:
    if spec.dtype != "string":
        return spec
    if spec.name in nones:
        # A column's encoder learnt Python None (as "None") and no NaN: a null there is that
        # None to scikit-learn, while another column's "nan" is NaN; no one category says both
        # (a null as "nan" was scored unknown in that column, with success): no null is taken,
        # and its refusal says to send "None".
        return replace(spec, none_category=True)
    # One list an input: encoders of its columns that learnt a gap's spelling ("n/a") as a
    # category in one column and not in another leave it without (the first one's list was
    # the input's, so the other column's "n/a" cell was scored as that category).
    if len(found.get(spec.name, ())) == 1:
        return replace(spec, missing=MISSING_CATEGORY, na_categories=next(iter(found[spec.name])))
    return spec
