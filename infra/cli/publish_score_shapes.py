"""The shape of a classifier's scores output, refused where it does not hold a row of scores
for each row sent (infra/cli/publish_classifier.py chooses the output; this checks its axes)."""

from __future__ import annotations

from functions.runtime.errors import BadRequest
from functions.runtime.manifest import TensorSpec
from functions.runtime.tensor_spec import batch_fixed_at


def one_a_row(spec: TensorSpec) -> bool:
    """A float output with one score per row ([N] or [N, 1])."""
    return (
        spec.dtype.startswith("float")
        and not spec.map_keys
        and spec.rank in (1, 2)
        and spec.shape[1:] in ((), (1,))
    )


def one_score_for_many(
    spec: TensorSpec,
    classes: int,
    option: str,
    inputs: tuple[TensorSpec, ...] = (),
    rows_apart: bool | None = None,
) -> None:
    """One score a row is a binary classifier's positive class: never one of 3+ classes. An
    output fixed at [2] unless every input's batch is fixed at 2 is the two class scores of
    one input with no batch axis too (a GRU exported on one window [steps, features]): read
    as one score a row, one window was answered two sigmoid predictions of the wrong class.
    Where every input is fixed at 2 rows, `rows_apart` False (swapping them did not swap the
    answers: functions/runtime/rows_swapped.py) says one window of 2 steps, not a batch."""
    unbatched = classes > 2 or not batch_fixed_at(inputs, classes) or rows_apart is False
    if classes >= 2 and unbatched and spec.rank == 1 and spec.shape[0] == classes:
        raise BadRequest(
            f"{option} {spec.name!r} is [{classes}]: the {classes} class scores of one input "
            "with no batch axis; export the model with one (torch: the example input as "
            "x.unsqueeze(0), and dynamic_axes={'x': {0: 'batch'}}), as a classifier answers a "
            "row of scores for each row it is sent"
        )
    if classes > 2 and one_a_row(spec):
        raise BadRequest(
            f"{option} {spec.name!r} has one score per row but the model has {classes} classes; "
            "a classifier's scores output has one column per class"
        )


def batch_first(spec: TensorSpec) -> TensorSpec:
    """Refuse scores whose batch axis comes last ([classes, N], a `logits.t()` export): read
    as rows, 4 rows answered 3 predictions and batch scoring failed on every chunk."""
    if spec.rank == 2 and spec.shape[0] > 1 and spec.shape[1] == -1:
        raise BadRequest(
            f"output {spec.name!r} is [{spec.shape[0]}, N]: its batch axis comes last; a "
            f"classifier's scores are [N, classes]: export them untransposed"
        )
    if spec.rank > 2 and spec.shape[0] > 1 and -1 in spec.shape[1:]:
        # skl2onnx's multi-label forest: [labels, N, 2], its classes read from a tree's leaves
        # (207 of them), so every request was a 500 and a batch of `labels` rows wrong answers
        shape = ", ".join("N" if size == -1 else str(size) for size in spec.shape)
        raise BadRequest(
            f"output {spec.name!r} is [{shape}]: its rows are not on the first axis (skl2onnx "
            "exports a multi-label classifier's probabilities so, one [N, 2] table a label); a "
            "classifier's scores are [N, classes], one class a row: publish it with --task other "
            "to serve its outputs as they are, or one model a label"
        )
    return spec
