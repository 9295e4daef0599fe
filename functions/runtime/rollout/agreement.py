"""Whether a rollout's `--min-agreement` can be judged, and how the shadow stage matches classes.

Agreement is the share of rows the candidate, as the alias's shadow, gives the baseline's class,
the two versions' classes matched as `aiaas compare` matches them
(functions/runtime/dataplane/class_match.py). Versions that name the same classes differently
(`setosa, versicolor, virginica` against `0, 1, 2`) agreed on no row by name, and a good
candidate was rolled back; they are matched by class index, and the start's log says so.
Versions with a class added or dropped (or the same classes in another order) are matched by
name, their scores compared on the classes both have; the start's log names the classes only
one has (before, every copy failed on scores of another shape and the candidate was rolled
back). Versions whose classes nothing links (no name shared, not as many classes) give no
agreement to judge: the rollout has no shadow stage then (it would judge nothing but errors),
goes to its steps (errors and latency still judged), and its start's log says why, rather than
judging a number that means nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from functions.runtime.dataplane.class_match import ClassMatch
from functions.runtime.manifest import ModelManifest
from functions.runtime.rollout.plan import RolloutPlan


@dataclass(frozen=True)
class AgreementStage:
    """Whether a shadow stage comes first, and what the start's log entry adds ("": nothing)."""

    shadow: bool
    note: str = ""


def agreement_stage(
    plan: RolloutPlan, baseline: ModelManifest, candidate: ModelManifest
) -> AgreementStage:
    """The shadow stage of a rollout of `candidate` over `baseline` under `plan`."""
    if not plan.shadow_first:
        return AgreementStage(False)
    match = ClassMatch.of(baseline, candidate)
    note = match.shadow_note()
    if note is None:
        return AgreementStage(True)
    if match.by is not None:
        return AgreementStage(True, f"; {note}")
    return AgreementStage(
        False,
        f"; no shadow stage: {note}, and --min-agreement {plan.min_agreement:g} is not judged "
        "(the steps still judge errors and latency; `aiaas compare` shows how the two "
        "versions' answers cross)",
    )
