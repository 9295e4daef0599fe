"""Whether a canary's answers still hold what the baseline's callers read from them.

A canary answers a share of the baseline's callers. Taking their inputs is not enough: a
candidate re-exported without `output_names` (torch's dynamo exporter then names the output
`linear_1`, not `logits`) answered an OIP request naming `logits` with a 422 ("unknown
output"), and every simple-JSON caller found no `logits` in its 200; a variant published
without `--labels` answered `?top_k` with a 422 and no `predictions` at all. Neither is a 5xx,
so `aiaas rollout` took it to 100% and said it succeeded (hunt_journey4 1). So a canary must
answer every output the baseline answers, by name, and class scores where the baseline does.
A shadow's answers reach no caller, and a promote without `--weight` moves every caller at once
(they are not checked here).
"""

from __future__ import annotations

from functions.runtime.manifest import ModelManifest


def answers_difference(baseline: ModelManifest, candidate: ModelManifest) -> str | None:
    """Why `candidate`'s answers lack what callers of `baseline` read, else None; with what to
    publish instead."""
    theirs = [spec.name for spec in candidate.outputs]
    lost = [spec.name for spec in baseline.outputs if spec.name not in theirs]
    if lost:
        shown = ", ".join(repr(name) for name in theirs)
        return (
            f"it has no output {lost[0]!r} (its outputs: {shown}): a request naming it (OIP "
            f"`outputs`) would get a 422 and callers reading it would find none; publish it "
            f"with the baseline's output names (torch.onnx.export(..., output_names="
            f"{[spec.name for spec in baseline.outputs]!r}))"
        )
    if baseline.postprocessing is not None and candidate.postprocessing is None:
        labels = ",".join(baseline.labels) if 0 < len(baseline.labels) <= 20 else "A,B,..."
        return (
            "it answers no class scores (no labels): `?top_k` would get a 422 and its answers "
            f"no `predictions`; publish it with --labels {labels} as the baseline was"
        )
    return None
