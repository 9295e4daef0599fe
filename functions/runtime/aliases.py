"""Alias records: `models/<name>/aliases/<alias>.json` holds the version an alias points at, who
moved it there and when, and the moves before (newest first, up to ALIAS_HISTORY): a rollback
walks that history back.

An alias may split traffic between its version and one other (`weights`, e.g. `{"1": 0.9,
"2": 0.1}`): `version` stays the main one, so a reader that knows only `version` (an older
predict function, a batch job) serves that, never a version the alias does not name.

An alias may also name a `shadow` version (`{"version": "2", "sample": 0.2}`): it answers no
caller, but that share of the alias's requests is replayed to it after the answer, off the
caller's path, and the two answers compared (functions/predict/shadow.py).

This module holds the rules of targets (splits, shadows, rollbacks); alias_record.py reads and
writes the records themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from functions.runtime import names
from functions.runtime.errors import BadRequest, Conflict, ModelNotFound, NotFound

ALIAS_HISTORY = 50
MAX_SPLIT = 2  # versions one alias may split traffic between
WEIGHT_DIGITS = 6  # stored rounded: 0.1 stays 0.1 and the pair adds up to exactly 1
SMALLEST = 10**-WEIGHT_DIGITS  # the smallest share (or shadow sample) a record keeps


@dataclass
class Written:
    """Told by an alias move whether it wrote the record: False when the alias already sent
    traffic as asked, another writer's move included (what a command then says: unchanged)."""

    written: bool = False


def wrote(record: dict[str, Any], written: Written | None) -> dict[str, Any]:
    """`record`, the one a move wrote, `written` told so."""
    if written is not None:
        written.written = True
    return record


@dataclass(frozen=True)
class Shadow:
    """A version that gets a `sample` share of an alias's requests replayed to it."""

    version: str
    sample: float

    @classmethod
    def parse(cls, raw: object) -> Shadow:
        if not isinstance(raw, Mapping):
            raise BadRequest('shadow must be an object such as {"version": "2", "sample": 0.2}')
        return cls(names.version_name(raw.get("version")), check_sample(raw.get("sample")))

    def record(self) -> dict[str, Any]:
        return {"version": self.version, "sample": self.sample}


def check_sample(sample: object) -> float:
    """A shadow's sample rate: a number above 0, at most 1 (every request)."""
    if isinstance(sample, bool) or not isinstance(sample, int | float):
        raise BadRequest(f"sample must be a number above 0 and at most 1; got {sample!r}")
    # Judged as stored (rounded): 1e-9 was taken and stored as 0, a record no reader takes.
    if not 0 < round(sample, WEIGHT_DIGITS) <= 1:  # NaN fails this too
        raise BadRequest(
            f"sample must be at least {SMALLEST} and at most 1 (0.2 replays 20% of requests to "
            f"the shadow; to stop shadowing, remove the shadow); got {sample!r}"
        )
    return round(float(sample), WEIGHT_DIGITS)


@dataclass(frozen=True)
class AliasTarget:
    """Where an alias sends requests: `version`, or a `canary` taking `weight` of them."""

    version: str
    canary: str | None = None
    weight: float = 0.0  # the canary's share, 0 < weight < 1 when there is one
    shadow: Shadow | None = None

    @classmethod
    def split(cls, version: str, canary: str, weight: object) -> AliasTarget:
        if canary == version:
            raise BadRequest(f"a split needs two different versions; got {version!r} twice")
        return cls(version, canary, round(check_weight(weight), WEIGHT_DIGITS))

    @classmethod
    def from_weights(cls, weights: object, current: str | None = None) -> AliasTarget:
        """From `{version: weight}` (one version at 1, or two adding up to 1); the main
        version is `current` when it is one of them, else the heavier one."""
        if not isinstance(weights, Mapping):
            raise BadRequest('weights must be an object such as {"1": 0.9, "2": 0.1}')
        if not weights:  # it is an object: "must be an object" told the caller nothing
            raise BadRequest(
                'weights names no version: name one at weight 1 ({"2": 1}) or two adding up '
                'to 1 ({"1": 0.9, "2": 0.1})'
            )
        if len(weights) > MAX_SPLIT:
            raise BadRequest(
                f"an alias splits traffic between at most {MAX_SPLIT} versions; got "
                f"{len(weights)} ({names.shown_names(weights, quoted=False)})"
            )
        parsed = {names.version_name(v): w for v, w in weights.items()}
        if len(parsed) == 1:
            ((version, weight),) = parsed.items()
            if weight != 1 or isinstance(weight, bool):
                raise BadRequest(
                    f"a single version takes all the traffic: weight 1; got {weight!r}"
                )
            return cls(version)
        checked = {v: check_weight(w) for v, w in parsed.items()}
        if not math.isclose(sum(checked.values()), 1.0, abs_tol=1e-6):
            raise BadRequest(f"weights must add up to 1; these add up to {sum(checked.values()):g}")
        main = current if current in checked else max(checked, key=checked.__getitem__)
        (canary,) = (v for v in checked if v != main)
        return cls.split(main, canary, checked[canary])

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> AliasTarget:
        """The target of a parsed record."""
        weights = record.get("weights")
        if weights is None:
            target = cls(str(record["version"]))
        else:
            target = cls.from_weights(weights, str(record["version"]))
        raw = record.get("shadow")
        return target if raw is None else replace(target, shadow=Shadow.parse(raw))

    def serves(self, version: str) -> bool:
        return version in (self.version, self.canary)

    def weights(self) -> dict[str, float] | None:
        if self.canary is None:
            return None
        return {self.version: round(1 - self.weight, WEIGHT_DIGITS), self.canary: self.weight}

    def describe(self) -> str:
        """`1`, or `1 (90%) + 2 (10%)`."""
        text = self.version
        if self.canary is not None:
            main, canary = (1 - self.weight) * 100, self.weight * 100
            text = f"{self.version} ({main:.4g}%) + {self.canary} ({canary:.4g}%)"
        if self.shadow is not None:
            text += f", shadow {self.shadow.version} ({self.shadow.sample * 100:.4g}% sampled)"
        return text


def check_weight(weight: object) -> float:
    """A canary's share: a number strictly between 0 and 1."""
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise BadRequest(f"weight must be a number between 0 and 1; got {weight!r}")
    # Judged as stored (rounded to WEIGHT_DIGITS): 1e-7 and 0.99999999999 were taken and stored
    # as 0 and 1, an alias record every reader refused (a 503 on every request of the alias).
    if not 0 < round(weight, WEIGHT_DIGITS) < 1:  # NaN fails this too
        raise BadRequest(
            f"weight must be from {SMALLEST} to {1 - SMALLEST:.6f} ({WEIGHT_DIGITS} decimals are "
            "kept; 0.1 sends 10% of requests to the version; to send all of them, promote it "
            f"without a weight); got {weight!r}"
        )
    return float(weight)


def weighted_target(
    name: str, alias: str, record: Mapping[str, Any] | None, version: str, weight: float
) -> AliasTarget:
    """The target that sends `weight` of `alias`'s requests to `version`, the rest to the
    version the alias points at now."""
    if record is None:
        raise Conflict(
            f"alias {alias!r} of model {name!r} points at no version yet, so there is nothing to "
            f"split with: promote a version to it first"
        )
    now = AliasTarget.of(record)
    if version == now.version:
        raise Conflict(
            f"alias {alias!r} of model {name!r} already points at version {version!r}; the "
            "weight is the share of the other version"
        )
    moved = AliasTarget.split(now.version, version, weight)
    no_third_version(name, alias, record, moved)
    return moved


def no_third_version(name: str, alias: str, record: Mapping[str, Any], moved: AliasTarget) -> None:
    """A Conflict when `moved` splits traffic with a version the alias's current split has
    not: its canary's callers would move to a third version with no rollback point between."""
    now = AliasTarget.of(record)
    if now.canary is None or moved.canary is None:
        return
    if {moved.version, moved.canary} <= {now.version, now.canary}:
        return
    raise Conflict(
        f"alias {alias!r} of model {name!r} already splits traffic {now.describe()}; an "
        f"alias splits between at most {MAX_SPLIT} versions: promote one of them fully or "
        "roll back first"
    )


def shadow_target(
    name: str, alias: str, record: Mapping[str, Any] | None, shadow: Shadow | None
) -> AliasTarget:
    """The alias's current target with `shadow` as its shadow (None: without one)."""
    if record is None:  # a 404, as every other route says of a missing alias (was a 409)
        raise ModelNotFound(
            f"alias {alias!r} of model {name!r} not found, so there is nothing to shadow: "
            f"promote a version to it first (aiaas promote {name} VERSION --alias {alias})"
        )
    now = AliasTarget.of(record)
    if shadow is not None and now.serves(shadow.version):
        raise Conflict(
            f"alias {alias!r} of model {name!r} already serves version {shadow.version!r} "
            f"({now.describe()}); a shadow is a version that answers no caller"
        )
    return replace(now, shadow=shadow)


def rollback_target(
    name: str,
    alias: str,
    record: Mapping[str, Any],
    to: str | None,
    published: Callable[[str, str], object] | None = None,
) -> AliasTarget:
    """Where a rollback of `alias` (its current `record`) goes: a split goes back to its main
    version, or to the state before it (one version or a split) when that had another main
    version; otherwise the latest other version in its history, or `to` when one of them. A
    shadow the move undone ended by serving its version comes back with it.
    `published(name, version)`: raises NotFound for a version deleted since (checked on the
    version chosen: a 404 that names where else it may go)."""
    found = _shadow_back(record, _rollback_target(name, alias, record, to))
    if published is not None:
        for version in filter(None, (found.version, found.canary)):  # a restored split: both
            try:
                published(name, version)
            except NotFound:
                raise rollback_gone(name, alias, record, version) from None
    return found


def _rollback_target(
    name: str, alias: str, record: Mapping[str, Any], to: str | None
) -> AliasTarget:
    now = AliasTarget.of(record)
    before = state_before(record) if now.canary is not None and to is None else None
    if before is not None and before.version != now.version:  # the split left it out: back
        return before
    if now.canary is not None and to in (None, now.version):
        return AliasTarget(now.version)
    current = now.version
    earlier = [str(h.get("version")) for h in record.get("history", []) if isinstance(h, dict)]
    earlier = [v for v in dict.fromkeys(earlier) if v != current]
    if now.canary is not None:
        earlier.insert(0, now.canary)
    if to == current:  # already there: unchanged, nothing written, as a promote to it
        return AliasTarget(current)
    if not earlier:
        raise Conflict(
            f"alias {alias!r} of model {name!r} has pointed only at version {current!r}; "
            "there is nothing to roll back to"
        )
    if to is None:
        return AliasTarget(earlier[0])
    if to not in earlier:
        from functions.runtime.version_spelling import spelled_otherwise  # a refusal only

        raise Conflict(
            f"alias {alias!r} of model {name!r} never pointed at version {to!r} (it pointed at "
            f"{', '.join(earlier)}){spelled_otherwise(name, to, [current, *earlier])}; to move "
            "it to a new version, promote that version"
        )
    return AliasTarget(to)


def _shadow_back(record: Mapping[str, Any], found: AliasTarget) -> AliasTarget:
    """`found`, with the shadow the alias had before it sent requests to the shadow's version
    when the rollback ends that: a canary of it (`aiaas promote iris 3 --weight 0.1` while 3
    was the shadow; raised since or not), or a promote of it (after such a canary or not).
    Back where the alias was, shadow included, as a rollout's rollback leaves it, from its 100%
    step too. A shadow ended some other way (`aiaas shadow --off`) stays ended, a current one is
    kept (by the move itself), and a rollback elsewhere (`--to` another version) adds none."""
    now = AliasTarget.of(record)
    if now.shadow is not None:
        return found
    # The moves onto the shadow's version: a split at one weight or more (the current one's, or
    # the canary of the version now served on the one the rollback goes back to).
    split = (now.version, now.canary) if now.canary is not None else (found.version, now.version)
    before = None
    history = list(record.get("history") or [])
    for index, entry in enumerate(history):
        try:
            before = AliasTarget.of(entry)
        except (KeyError, BadRequest, TypeError):  # an entry this release cannot read
            return found
        if before.shadow is not None or (before.version, before.canary) != split:
            if before.shadow is not None and _rollout_stage(entry, record):
                # that rollout's own shadow stage, not a shadow the alias had: what the alias
                # had is the state the rollout started from (a plain rollback after a rollout
                # with --min-agreement left a 100% shadow of the version rolled back from)
                try:
                    before = AliasTarget.of(history[index + 1])
                except (IndexError, KeyError, BadRequest, TypeError):
                    return found
            break
    shadow = None if before is None else before.shadow
    if shadow is None or not now.serves(shadow.version) or found.serves(shadow.version):
        return found
    if before is None or replace(before, shadow=None) != found:  # not where that move started
        return found
    return replace(found, shadow=shadow)


def _rollout_stage(entry: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """Whether `entry` was written by the rollout whose moves `record` holds now (its actor
    `who (rollout ID)`, as the rollout engine writes it)."""
    by = str(record.get("updated_by") or "")
    mark = by[by.rfind(" (rollout ") :] if " (rollout " in by and by.endswith(")") else ""
    return bool(mark) and str(entry.get("updated_by") or "").endswith(mark)


def state_before(record: Mapping[str, Any]) -> AliasTarget | None:
    """Where the alias sent traffic before its current `record` (its newest history entry: one
    version or a split, without a shadow: a rollback keeps the current one), or None. A split
    set with `weights` may name neither version the alias pointed at; ending it at its main
    version put a version that never served alone at 100% instead of going back."""
    history = record.get("history") or []
    if not isinstance(history[0] if history else None, dict):
        return None
    try:
        return AliasTarget.of({k: history[0][k] for k in ("version", "weights") if k in history[0]})
    except (KeyError, BadRequest):  # an entry this release cannot read: the main version
        return None


def rollback_gone(name: str, alias: str, record: Mapping[str, Any], gone: str) -> NotFound:
    """The 404 of a rollback whose target was deleted since (its release was pruned while a
    split made the split's end the rollback target), naming the versions it may go to: it
    said "point the deployment at an alias", advice for pinned callers."""
    now = AliasTarget.of(record)
    seen = [str(h.get("version")) for h in record.get("history", []) if isinstance(h, dict)]
    others = [v for v in dict.fromkeys(seen) if v not in (gone, now.version)]
    choices = f": roll back --to one it pointed at ({', '.join(others)})" if others else ""
    return NotFound(
        f"alias {alias!r} of model {name!r} would roll back to version {gone!r}, which was "
        f"deleted (`aiaas versions {name}` shows when){choices}, or promote a version"
    )
