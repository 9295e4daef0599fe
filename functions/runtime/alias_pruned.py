"""What an alias may be moved to: a published version, a canary or shadow that takes the
main version's requests. An alias move that lost a race with a prune is undone: the move checks its version is
published, then writes the record; a prune (`pruning.carry_out`) deletes the manifest, then
reads the aliases. Either may come first, so each checks after its own write: the prune puts
back a manifest an alias now names, and the move, here, reads the manifests it names once
written. Whichever order, no alias is left pointing at a deleted version.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from functions.runtime.alias_record import parse_alias_record
from functions.runtime.aliases import AliasTarget
from functions.runtime.errors import AiaasError, Conflict, InvalidInput, NotFound, VersionPruned
from functions.runtime.refs import DEFAULT_ALIAS, manifest_key
from functions.runtime.store_api import ObjectChanged, ObjectStore

if TYPE_CHECKING:
    from functions.runtime.registry import Registry

log = logging.getLogger("aiaas.registry")


def published_target(
    registry: Registry,
    name: str,
    version: str,
    advice: str = "an alias points at a published version only",
) -> None:
    """An alias's new target must be published (a 404 naming it). A pruned one's 404 said
    "point the deployment at an alias", the advice for a pinned caller, to `aiaas promote`
    (and to `aiaas rollout`, whose `advice` is its own)."""
    try:
        registry.manifest(name, version)
    except VersionPruned as exc:
        raise VersionPruned(
            f"version {version!r} of model {name!r} was deleted (pruned; `aiaas versions {name}` "
            f"shows when): {advice}",
            settled=exc.settled,
        ) from None


def takes_requests(
    registry: Registry,
    name: str,
    raw: bytes | None,
    target: AliasTarget,
    *,
    back: bool = False,
    alias: str = DEFAULT_ALIAS,
) -> AliasTarget:
    """`target`, checked against what its main version takes (`same_inputs`), as a rollout's
    start checks its candidate. A version newly given a share or copies of the requests (a
    canary, a shadow) that does not take them is a 422: `promote --weight` of one reading 5
    features where production reads 4 answered its share of the callers 422 (a caller's error:
    no error rate or 5xx alarm saw it), a shadow of it failed every copy. A version newly
    answering callers in a split (`answering`) must also answer what they read
    (`same_answers`). A shadow the alias keeps through a move of its main version (a promote, a
    rollback) that does not take the new main's requests ends, with a warning: every copy
    failed, and no move is refused for it. `back`: a rollback, which goes where callers were."""
    before, record = None, None
    with contextlib.suppress(AiaasError):  # a corrupt record replaced: it named nothing
        record = parse_alias_record(name, "", raw) if raw else None
        before = AliasTarget.of(record) if record else None
    added = sorted(named(target) - (named(before) if before else set()) - {target.version})
    baseline, newly = answering(before, target, back)
    shadow = target.shadow  # kept through a move of the main version: checked against the new
    moved = before is not None and before.version != target.version
    kept = shadow if shadow is not None and shadow.version not in added and moved else None
    if not added and not newly and kept is None:
        return target
    # imported here: it takes numpy, which the health function's cold start (it reads the
    # registry) does without
    from functions.runtime.rollout.same_answers import (
        RELABELLED,
        REORDERED,
        answers_difference,
        back_command,
    )
    from functions.runtime.rollout.same_inputs import difference

    main = registry.manifest(name, target.version)
    base = main if baseline == target.version else registry.manifest(name, baseline)
    for version in [*newly, *(v for v in added if v not in newly)]:
        manifest = registry.manifest(name, version)
        served = baseline if version in newly else target.version
        why = difference(base if version in newly else main, manifest)
        if why is not None:
            raise InvalidInput(
                f"version {version} of {name} does not take the requests {served} takes "
                f"({why}): the callers it answered would get a 422 from it (a shadow, every "
                "copy); publish one with the same inputs, or move every caller to it at once"
            )
        way_back = back_command(name, alias, record, version)
        lacks = answers_difference(base, manifest, way_back) if version in newly else None
        if lacks is not None:  # a shadow's answers reach no caller
            at_once = (  # every caller moved reads rows by position as wrongly
                ""
                if lacks[0].startswith((REORDERED, RELABELLED))
                else f", or move every caller to it at once (`aiaas promote {name} {version}` "
                "without --weight)"
            )
            raise InvalidInput(
                f"version {version} of {name} does not answer as {served} does ({lacks[0]}): "
                f"{lacks[1]}{at_once}"
            )
    why = None if kept is None else difference(main, registry.manifest(name, kept.version))
    if kept is not None and why is not None:
        log.warning(
            "%s: shadow %s ended: it does not take the requests %s takes (%s), so every copy "
            "would fail; `aiaas shadow %s VERSION` shadows one that does",
            name, kept.version, target.version, why, name,
        )  # fmt: skip
        return replace(target, shadow=None)
    return target


def answering(before: AliasTarget | None, target: AliasTarget, back: bool) -> tuple[str, list[str]]:
    """The version the alias's callers were getting, and the versions of a split `target`
    newly answering them: its canary when newly the canary (a shadow made the canary was never
    checked for answers: its canary answered 422 to OIP requests naming an output it lacks), its
    main version when newly the main one (`{"4": 0.9, "3": 0.1}` on an alias serving 1 moved 90%
    of the callers to 4 unchecked). A move without a split (a promote, a rollback) moves every
    caller at once: none; a rollback goes back where callers were: checked as set then."""
    if target.canary is None:
        return target.version, []
    baseline = target.version if before is None or back else before.version
    was = None if before is None else before.canary
    mains = [] if before is None or back or target.version == before.version else [target.version]
    canary = [target.canary] if target.canary not in (was, baseline) else []
    return baseline, [*mains, *canary]


def named(target: AliasTarget) -> set[str]:
    """Every version an alias target sends requests to (main, canary, shadow)."""
    shadow = () if target.shadow is None else (target.shadow.version,)
    return {target.version, *((target.canary,) if target.canary else ()), *shadow}


def undo_if_pruned(
    store: ObjectStore, name: str, alias: str, key: str, old: bytes | None, new: bytes
) -> None:
    """After `new` was written at `key` over `old`: Conflict, with `old` put back (if `new` is
    still there), when a version `new` newly names has lost its manifest meanwhile."""
    before: set[str] = set()
    with contextlib.suppress(AiaasError):  # a corrupt record replaced: it named nothing
        before = named(AliasTarget.of(parse_alias_record(name, alias, old))) if old else set()
    added = named(AliasTarget.of(parse_alias_record(name, alias, new))) - before
    gone = sorted(v for v in added if not store.exists(manifest_key(name, v)))
    if not gone:
        return
    try:
        version = store.version(key)
        current, etag = store.read_versioned(key)
        if current == new:  # ours still: another writer's record is theirs to keep
            if old is None:
                store.delete(key, if_version=version)
            else:
                store.put_bytes(key, old, if_match=etag)
    except (ObjectChanged, NotFound):
        pass  # moved on by another writer meanwhile
    raise Conflict(
        f"version {', '.join(map(repr, gone))} of model {name!r} was deleted (`aiaas prune`) "
        f"while alias {alias!r} was being moved onto it; the alias is left as it was"
    )
