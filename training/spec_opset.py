"""The highest ONNX opset the chosen exporter writes on this machine (checked with the spec)."""

from __future__ import annotations

import importlib.util


def max_opset(opset: int, exporter: str) -> int | None:
    """The highest opset the chosen exporter writes here, for an `opset` above the default 18
    (which both write): an unknown one trained, then failed to export (dynamo wrote 18, unsaid;
    torchscript printed its graph dump). dynamo converts up to what the installed onnx knows,
    torchscript up to torch's ONNX_MAX_OPSET; None where that package is not installed (the run
    needs it and says so), so `--check` imports torch only for such a spec."""
    if opset <= 18:
        return None
    package = "torch" if exporter == "torchscript" else "onnx"
    if importlib.util.find_spec(package) is None:
        return None
    if package == "onnx":
        import onnx.defs

        return int(onnx.defs.onnx_opset_version())
    from torch.onnx import _constants

    return int(_constants.ONNX_MAX_OPSET)
