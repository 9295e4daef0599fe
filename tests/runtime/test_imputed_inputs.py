"""Which inputs a graph imputes (functions/runtime/imputed_inputs.py), on hand-made Imputers:
one filling NaN with finite values imputes, one filling it with NaN does not (review_rev8 7)."""

from __future__ import annotations

import math

import pytest
from onnx import TensorProto, helper

from functions.runtime.imputed_inputs import imputed_inputs


def _graph(fill: float, replaced: float = math.nan):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])
    imputer = helper.make_node(
        "Imputer",
        ["x"],
        ["y"],
        domain="ai.onnx.ml",
        imputed_value_floats=[fill, fill],
        replaced_value_float=replaced,
    )
    return helper.make_graph([imputer], "g", [x], [y])


@pytest.mark.parametrize(
    ("fill", "replaced", "imputed"),
    [
        (1.5, math.nan, True),  # scikit-learn's SimpleImputer, as skl2onnx writes it
        (math.nan, math.nan, False),  # NaN in, NaN out: nothing imputed
        (1.5, 0.0, False),  # replaces zeros, not NaN
    ],
)
def test_an_imputer_imputes_nan_only_with_finite_values(
    fill: float, replaced: float, imputed: bool
) -> None:
    assert (imputed_inputs(_graph(fill, replaced)) == {"x"}) is imputed
