"""Whether a rollout may start on an alias: it points at one version (no split), not the
candidate, whose requests the candidate takes; with `--min-agreement`, classes to agree on and
no shadow of another version in the way."""

from __future__ import annotations

from functions.runtime.alias_deleted import deleted_note, deleted_record
from functions.runtime.errors import Conflict, CorruptRecord, InvalidInput
from functions.runtime.registry import Registry
from functions.runtime.rollout.agreement import AgreementStage, agreement_stage
from functions.runtime.rollout.moves import Seen, look
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.rollout.same_answers import answers_difference, back_command
from functions.runtime.rollout.same_inputs import difference, labelled


def startable(
    registry: Registry, model: str, alias: str, candidate: str, plan: RolloutPlan
) -> tuple[Seen, AgreementStage]:
    """The alias record a rollout of `candidate` starts from (its first move is made onto it,
    nothing else), and its shadow stage; Conflict or InvalidInput, saying why, when it may not
    start there."""
    seen = look(registry, model, alias)
    target = seen.target
    if target is None:
        _deleted(registry, model, alias)
        raise Conflict(
            f"alias {alias!r} of model {model!r} points at no version yet: promote a first "
            "version to it (a rollout moves traffic from one version to another)"
        )
    if target.canary is not None:
        raise Conflict(
            f"alias {alias!r} of model {model!r} already splits traffic "
            f"({target.describe()}): promote or roll back first"
        )
    if target.version == candidate:
        raise Conflict(f"alias {alias!r} of model {model!r} already serves {candidate!r}")
    base, other = (registry.manifest(model, v) for v in (target.version, candidate))
    why = difference(base, other)
    if why is not None:  # its share of the callers would get a 422 each, the rollout go on
        raise InvalidInput(
            f"version {candidate} of {model} does not take the requests {target.version} "
            f"takes ({why}): the callers of {alias!r} would get a 422 from it; publish a "
            "candidate with the same inputs"
        )
    lacks = answers_difference(base, other, back_command(model, alias, seen.record, candidate))
    if lacks is not None:  # its share of the callers would miss what they read, or get a 422
        raise InvalidInput(
            f"version {candidate} of {model} does not answer as {target.version} does "
            f"({lacks[0]}): {lacks[1]}"
        )
    if plan.min_agreement is not None:  # judged on labels: a regressor gives none
        labelled(model, {target.version: base, candidate: other})
    stage, shadow = agreement_stage(plan, base, other), target.shadow
    if stage.shadow and shadow is not None and shadow.version != candidate:
        # Without a shadow stage the alias's shadow is not in the way: it stays, as a
        # promote keeps it.
        raise Conflict(
            f"alias {alias!r} of model {model!r} shadows version {shadow.version!r}; "
            "a rollout with --min-agreement shadows the candidate: remove that shadow first"
        )
    return seen, stage


def _deleted(registry: Registry, model: str, alias: str) -> None:
    """Conflict saying who deleted `alias` and when, when it was deleted: a rollout started as
    someone deleted the alias said it "points at no version yet: promote a first version to
    it", as of an alias never set (hunt_races 5)."""
    try:
        if deleted_record(registry.store, model, alias) is None:
            return
    except CorruptRecord:  # says nothing to restore: as if never set
        return
    raise Conflict(
        f"{deleted_note(registry.store, model, alias)}; a rollout moves traffic from the "
        "version the alias serves"
    )
