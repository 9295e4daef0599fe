"""Training's torch-vs-ONNX parity gate, as a manifest records it, in words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def parity_summary(parity: Mapping[str, Any]) -> str:
    """Training's parity gate as a person reads it (`aiaas train`'s summary, `aiaas show`)."""
    # A regressor's tolerance is in target standard deviations: say what it allowed.
    scaled = f" x target std {parity['scale']:.4g}" if "scale" in parity else ""
    asked = parity["tolerance"] * parity.get("scale", 1.0)
    # The gate never asks for less than 4 float32 steps at the outputs' size: a tolerance of
    # 1e-9 x std 78 read as 7.8e-8 beside a diff of 3e-5 that passed.
    floor = (
        f", allowed {parity['allowed']:.3g}: 4 float32 steps at the outputs' size"
        if parity.get("allowed", asked) > asked * (1 + 1e-9)
        else ""
    )
    return (
        f"max abs diff {parity['max_abs_diff']:.3g} on {parity['rows']} rows "
        f"(tolerance {parity['tolerance']:g}{scaled}{floor})"
    )
