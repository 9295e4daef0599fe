"""What an alias may be moved to: a published version, a canary or shadow that takes the
main version's requests. An alias move that lost a race with a prune is undone: the move checks its version is
published, then writes the record; a prune (`pruning.carry_out`) deletes the manifest, then
reads the aliases. Either may come first, so each checks after its own write: the prune puts
back a manifest an alias now names, and the move, here, reads the manifests it names once
written. Whichever order, no alias is left pointing at a deleted version.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from functions.runtime.aliases import AliasTarget, parse_alias_record
from functions.runtime.errors import AiaasError, Conflict, InvalidInput, NotFound, VersionPruned
from functions.runtime.refs import manifest_key
from functions.runtime.store_api import ObjectChanged, ObjectStore

if TYPE_CHECKING:
    from functions.runtime.registry import Registry


def published_target(registry: Registry, name: str, version: str) -> None:
    """An alias's new target must be published (a 404 naming it). A pruned one's 404 said
    "point the deployment at an alias", the advice for a pinned caller, to `aiaas promote`."""
    try:
        registry.manifest(name, version)
    except VersionPruned as exc:
        raise VersionPruned(
            f"version {version!r} of model {name!r} was deleted (pruned; `aiaas versions {name}` "
            "shows when): an alias points at a published version only",
            settled=exc.settled,
        ) from None


def takes_requests(registry: Registry, name: str, raw: bytes | None, target: AliasTarget) -> None:
    """A 422 when a version newly given the alias's requests beside its main version (a canary,
    a shadow) does not take what the main version takes (`same_inputs`), as a rollout's start
    refuses it: `promote --weight` of one reading 5 features where production reads 4 answered
    its share of the callers 422 (a caller's error: no error rate or 5xx alarm saw it), and a
    shadow of it failed every copy."""
    old: set[str] = set()
    with contextlib.suppress(AiaasError):  # a corrupt record replaced: it named nothing
        old = named(AliasTarget.of(parse_alias_record(name, "", raw))) if raw else set()
    added = sorted(named(target) - old - {target.version})
    if not added:
        return
    # imported here: it takes numpy, which the health function's cold start (it reads the
    # registry) does without
    from functions.runtime.rollout.same_inputs import difference

    main = registry.manifest(name, target.version)
    for version in added:
        why = difference(main, registry.manifest(name, version))
        if why is not None:
            raise InvalidInput(
                f"version {version} of {name} does not take the requests {target.version} takes "
                f"({why}): the callers it answered would get a 422 from it (a shadow, every "
                "copy); publish one with the same inputs, or promote it without --weight"
            )


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
