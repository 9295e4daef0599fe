"""The alias a publish points at its new version (`--alias`): the one step after the version
exists, so a refusal there must say that it does."""

from __future__ import annotations

import logging
import shlex

from functions.runtime.aliases import Written
from functions.runtime.errors import AiaasError
from functions.runtime.registry import Registry
from functions.runtime.rollout.record import RolloutBook

log = logging.getLogger("aiaas.registry")


def point_alias_at_published(
    registry: Registry, name: str, alias: str, version: str, reason: str | None = None
) -> None:
    """`set_alias` after `name:version` was published (`reason`: why, its --reason, kept in the
    alias history as a promote's is; checked before the publish began). A refusal (a full or
    read-only store, access denied on aliases/) was said as the store's error alone: nothing
    said the version existed, and the natural retry published (or trained and published) the
    same model again as the next version. It now names the version and the command that
    finishes the job."""
    written = Written()
    again = f"aiaas promote {name} {version} --alias {alias}"
    if reason:
        again += f" --reason={shlex.quote(reason)}"
    try:
        registry.set_alias(name, alias, version, written=written, check=False, reason=reason)
    except AiaasError as exc:
        said = AiaasError(
            f"published {name}:{version}, but could not point {alias!r} at it: {exc.message}; "
            f"once that is fixed, run `{again}` (not the "
            "publish again: it would be a new version)",
            public_message=exc.public_message,
        )
        said.status = exc.status  # the store's refusal's
        raise said from exc
    if written.written:
        _say_rollout_superseded(registry, name, alias)


def _say_rollout_superseded(registry: Registry, name: str, alias: str) -> None:
    """`--alias` over a running rollout ends it, as a promote by hand does: said as `aiaas
    promote` says it (a publish or `train --publish` had ended it without a word, hunt_races 4)."""
    rollout = RolloutBook(registry.store).get(name, alias)
    if rollout is not None and rollout.running:
        log.warning(
            "the rollout of %s@%s (%s -> %s, by %s) was running: its driver's next check ends "
            "it as superseded and leaves the alias as set here (`aiaas rollout status` shows it)",
            name, alias, rollout.baseline, rollout.candidate, rollout.started_by,
        )  # fmt: skip
