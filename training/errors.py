"""Errors of training jobs. Each one says what to fix; the CLI prints the message and exits 1."""

from __future__ import annotations

from functions.runtime.errors import AiaasError, BadRequest


class SpecError(BadRequest):
    """The job spec is invalid; the message names the field (`recipe.params.hidden`)."""


class DataError(BadRequest):
    """The data set cannot be trained on (missing column, NaN, wrong type, a single class)."""


class ExportError(AiaasError):
    """The ONNX export failed or does not match torch (parity); nothing is published."""


class TrainingError(AiaasError):
    """Training itself failed (the loss became NaN or infinite)."""
