"""Rollouts running on a model's other aliases, named where a command about one alias finds
none running: `aiaas rollout abort clf` during an incident whose rollout ran on `staging` was
told only "the rollout of clf@production is not running (it rolled_back); nothing to abort",
with no word of the split still live on staging (hunt_journey24 6)."""

from __future__ import annotations

from functions.runtime.errors import AiaasError, Conflict, NotFound
from functions.runtime.rollout.record import RolloutBook
from functions.runtime.store import ObjectStore


def elsewhere(store: ObjectStore, model: str, alias: str, verb: str) -> str:
    """ "a rollout of m@staging is running (2 -> 1, started by ci): aiaas rollout VERB m --alias
    staging" for each other alias of `model` whose rollout runs, joined by "; "; "" for none
    (or when they cannot be read: a hint, never a reason to fail)."""
    try:
        records = RolloutBook(store).all(model)
    except AiaasError:
        return ""
    return "; ".join(
        f"a rollout of {model}@{r.alias} is running ({r.baseline} -> {r.candidate}, started by "
        f"{r.started_by}): aiaas rollout {verb} {model} --alias {r.alias}"
        for r in records
        if r.alias != alias and r.running
    )


def with_elsewhere(exc: AiaasError, store: ObjectStore, model: str, alias: str, verb: str) -> None:
    """Raise `exc` (a Conflict or NotFound about `alias`) again, naming the rollouts running on
    the model's other aliases when there are any; return when it is no such refusal."""
    if not isinstance(exc, (Conflict, NotFound)):
        return
    hint = elsewhere(store, model, alias, verb)
    if hint:
        kind = Conflict if isinstance(exc, Conflict) else NotFound  # its status: its exit code
        raise kind(f"{exc.message}; {hint}") from None
