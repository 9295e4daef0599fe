"""The model registry: immutable versions and mutable aliases on an object store.

Layout (the contract in DESIGN.md):

    models/<name>/versions/<version>/model.onnx      the artifact
    models/<name>/versions/<version>/manifest.json   written last, conditionally: its presence
                                                     is what makes the version exist
    models/<name>/versions/<version>/card/...        model card and plots (optional)
    models/<name>/aliases/<alias>.json               {"version"[, "weights"], "history", ...}

References: `name` (`production`, else the newest version), `name:version`, `name@alias`; a
split alias resolves to its main version (`resolve`) or both (`resolve_split`, as served).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from functions.runtime import names, resolution
from functions.runtime.alias_record import parse_alias_record
from functions.runtime.aliases import (
    AliasTarget,
    Shadow,
    Written,
    no_third_version,
    rollback_target,
    weighted_target,
)
from functions.runtime.errors import (
    ModelNotFound,
    NotFound,
    VersionPruned,
)
from functions.runtime.manifest import MANIFEST_FILE, ModelManifest
from functions.runtime.refs import (
    DEFAULT_ALIAS,
    ModelRef,
    Resolution,
    alias_key,
    manifest_key,
    model_key,
    model_prefix,
    parse_ref,
    version_prefix,
    version_sort_key,
    watched_keys,
)
from functions.runtime.store import Moved, ObjectStore, open_store
from functions.runtime.version_folders import Listings, VersionFolders, list_versions, parsed

if TYPE_CHECKING:  # alias writes' modules are imported where used: not a predict cold start
    from functions.runtime.alias_preconditions import Precondition
    from functions.runtime.manifest_pins import ManifestPin

# References and keys live in refs.py; callers that know them as the registry's still may.
__all__ = [
    "DEFAULT_ALIAS",
    "ModelRef",
    "Registry",
    "Resolution",
    "alias_key",
    "manifest_key",
    "model_key",
    "parse_ref",
    "version_prefix",
    "version_sort_key",
]


class Registry:
    """Publish, list and resolve model versions and aliases on one object store."""

    def __init__(self, store: ObjectStore | None = None) -> None:
        self.store = store if store is not None else open_store()
        self._listings = Listings()  # each model's last delimiter listing (version_folders.py)
        self._pruned: dict[tuple[str, str], str] = {}  # (name, version) -> 404 (`pruned_for_good`)

    # ---- versions -----------------------------------------------------------------------

    def publish(
        self,
        manifest: ModelManifest,
        model_file: Path,
        extra_files: Mapping[str, Path] | None = None,
        progress: Moved | None = None,
        *,
        on_written: Callable[[], object] | None = None,
    ) -> ModelManifest:
        """Store a new immutable version (`publishing.publish_version`): the manifest as stored.
        `on_written` is told as soon as the version exists (its manifest's write answered)."""
        from functions.runtime.publishing import publish_version  # serving never publishes

        files = extra_files or {}
        return publish_version(
            self.store, manifest, Path(model_file), files, progress, on_written=on_written
        )

    def next_version(self, name: str) -> str:
        """One more than the largest number published, pruned, claimed, or cut off mid-publish."""
        # Publishing only: not a predict function's cold start.
        from functions.runtime.prune_log import claimed_numbers, pruned_versions

        started = self.store.list_dirs(f"{model_prefix(name)}/versions")  # none of them reused:
        started += pruned_versions(self.store, name) | claimed_numbers(self.store, name)
        return names.next_number(name, started)  # a Conflict past 64 digits, said as such

    def models(self) -> list[str]:
        """Names with a published version, from one walk of the store (catalog.py)."""
        from functions.runtime.catalog import catalog  # listings only: not a predict cold start

        return list(catalog(self.store))

    def versions(self, name: str, *, missing_ok: bool = False) -> list[str]:
        """Published versions of `name` in `version_sort_key` order (the last is the default)."""
        # One listing, not a HEAD per version (200 versions: ~200 round trips per call).
        prefix = f"{model_prefix(name)}/versions/"
        found = [
            part[0]
            for key in self.store.list_keys(prefix.rstrip("/"))
            if len(part := key[len(prefix) :].split("/")) == 2 and part[1] == MANIFEST_FILE
        ]
        if not found and not missing_ok:
            raise ModelNotFound(f"model {name!r} not found")
        return sorted(found, key=version_sort_key)

    def pruned_for_good(self, name: str, version: str) -> VersionPruned | None:
        """Its 404 from memory once `manifest` found it pruned for good: no store call."""
        pruned = self._pruned.get((name, version))
        return None if pruned is None else VersionPruned(pruned, settled=True)

    def manifest(self, name: str, version: str, pin: ManifestPin | None = None) -> ModelManifest:
        """`name:version`'s manifest; `pin`: its bytes checked against an alias's record. A
        version remembered as pruned for good answers its 404 from memory to pinned calls, but
        an alias's resolution (`pin`: once a TTL) reads the store: a version put back from a
        backup and promoted was refused by every running server, which went on serving the
        alias's version before, until a restart. Found again, it is forgotten as pruned."""
        if pin is None and (pruned := self.pruned_for_good(name, version)) is not None:
            raise pruned
        try:
            raw = self.store.get_bytes(manifest_key(name, version))
        except NotFound:
            from functions.runtime.prune_log import version_not_found  # a miss: not a cold start

            missing = version_not_found(self.store, name, version)
            if isinstance(missing, VersionPruned) and missing.settled:
                self._pruned[(name, version)] = missing.message
            raise missing from None
        self._pruned.pop((name, version), None)  # there after all (put back from a backup)
        if pin is not None:
            pin.check(name, version, raw)
        return parsed(name, version, raw)

    def listing(self, name: str, reuse_within: float = 0.0) -> VersionFolders:
        """`name`'s versions from one delimiter listing (version_folders.py), or the one made
        less than `reuse_within` seconds ago: what a bare name serves, and what it names."""
        return self._listings.get(
            name, reuse_within, lambda last: list_versions(self.store, name, self.versions, last)
        )

    # ---- aliases ------------------------------------------------------------------------

    def set_alias(
        self,
        name: str,
        alias: str,
        version: str,
        *,
        weight: float | None = None,
        actor: str | None = None,
        when: Precondition | None = None,
        written: Written | None = None,
        mark: Mapping[str, Any] | None = None,
        shadow: Shadow | None = None,
        check: bool = True,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Point `alias` at a version (who moved it, when; why: `reason`); with a `weight`, only
        that share of its requests, the rest where it points now. `written`: whether this call
        wrote one. `mark`, `shadow` (no `weight`): a rollout's move back, marked
        (rollback_pinned), with the shadow of its candidate it ended put back in the same record
        (else kept as is)."""
        from functions.runtime.alias_pruned import published_target  # writes: not a cold start
        from functions.runtime.move_checked import check_move

        published_target(self, name, version)
        check_move(self, name, alias, [version] if check else [])  # not: just written (publish)
        if weight is None:
            back = AliasTarget(version, shadow=shadow)
            return self._move_alias(
                name, alias, lambda _: back, actor, when, written=written, mark=mark, reason=reason
            )

        def target(raw: bytes | None) -> AliasTarget:
            record = None if raw is None else parse_alias_record(name, alias, raw)
            return weighted_target(name, alias, record, version, weight)

        return self._move_alias(name, alias, target, actor, when, written=written, reason=reason)

    def set_alias_weights(
        self,
        name: str,
        alias: str,
        weights: Mapping[str, float],
        *,
        actor: str | None = None,
        when: Precondition | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Split `alias` between the versions in `weights` (at most two, adding up to 1)."""
        from functions.runtime.alias_pruned import published_target  # writes: not a cold start
        from functions.runtime.move_checked import check_move

        AliasTarget.from_weights(weights)  # a bad split is refused before any store read
        for version in weights:
            published_target(self, name, version)
        check_move(self, name, alias, weights)  # the files of a version newly given requests

        def target(raw: bytes | None) -> AliasTarget:
            record = None if raw is None else parse_alias_record(name, alias, raw)  # or a 503
            moved = AliasTarget.from_weights(weights, None if record is None else record["version"])
            if record is not None:  # {"1": 0.9, "3": 0.1} replaced canary 2, unsaid
                no_third_version(name, alias, record, moved)
            return moved

        return self._move_alias(name, alias, target, actor, when, reason=reason)

    def set_shadow(
        self,
        name: str,
        alias: str,
        version: str | None,
        sample: float = 1.0,
        *,
        actor: str | None = None,
        when: Precondition | None = None,
        written: Written | None = None,
        mark: Mapping[str, Any] | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Replay a `sample` of `alias`'s requests to `version` (None: stop), traffic unmoved
        (shadow_moves); `mark`: a rollout's rollback that moved only its shadow stage back."""
        from functions.runtime.shadow_moves import shadowed  # writes only: not a predict cold start

        choose = shadowed(self, name, alias, version, sample)
        how = {"keep_shadow": False, "written": written, "mark": mark, "reason": reason}
        return self._move_alias(name, alias, choose, actor, when, **how)

    def rollback(
        self,
        name: str,
        alias: str,
        *,
        to: str | None = None,
        actor: str | None = None,
        when: Precondition | None = None,
        written: Written | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """`alias` back to where it pointed before, or `to` (in its history): rollback_pinned."""
        from functions.runtime import alias_deleted  # writes only: not a predict cold start
        from functions.runtime.move_checked import sizes_checked
        from functions.runtime.rollback_pinned import ROLLED_BACK, pinned

        to = None if to is None else names.version_name(to)

        def target(raw: bytes | None) -> AliasTarget:
            if raw is None:  # deleted: back where it pointed then (NotFound if never there)
                self.versions(name)  # an unknown model reads as such, not as a missing alias
                return alias_deleted.restored_target(self.store, name, alias)
            record = parse_alias_record(name, alias, raw)
            return rollback_target(name, alias, record, to, published=self.manifest)

        chosen = pinned(name, alias, target, to, actor)  # marked: a plain rollback is refused
        chosen = sizes_checked(self, name, alias, chosen)  # sizes only: waits for no hash
        how = {"mark": ROLLED_BACK, "written": written, "reason": reason}
        return self._move_alias(name, alias, chosen, actor, when, **how)

    def _move_alias(
        self,
        name: str,
        alias: str,
        choose: Callable[[bytes | None], AliasTarget],
        actor: str | None,
        when: Precondition | None = None,
        **how: Any,
    ) -> dict[str, Any]:
        """A compare-and-swap on the alias record (alias_cas.move_alias: `how`, its keywords)."""
        from functions.runtime.alias_cas import move_alias  # writes: not a predict cold start

        return move_alias(self, name, alias, choose, actor, when, **how)

    def alias_record_tagged(self, name: str, alias: str) -> tuple[dict[str, Any], str] | None:
        """The alias record and its ETag (for `when=Precondition(if_match=...)`), or None."""
        # An ETag is for a writer's precondition: not a predict function's cold start.
        from functions.runtime.alias_preconditions import record_etag

        raw = self._alias_raw(name, alias)
        return None if raw is None else (parse_alias_record(name, alias, raw), record_etag(raw))

    def alias_record(self, name: str, alias: str) -> dict[str, Any] | None:
        raw = self._alias_raw(name, alias)
        return None if raw is None else parse_alias_record(name, alias, raw)

    def _alias_raw(self, name: str, alias: str) -> bytes | None:
        try:
            return self.store.get_bytes(alias_key(name, alias))
        except NotFound:
            return None

    def alias(self, name: str, alias: str) -> str | None:
        """The version `alias` points at (its main version when it splits traffic)."""
        record = self.alias_record(name, alias)
        return None if record is None else str(record["version"])

    def alias_target(self, name: str, alias: str) -> AliasTarget | None:
        record = self.alias_record(name, alias)
        return None if record is None else AliasTarget.of(record)

    def aliases(self, name: str) -> dict[str, str]:
        """The aliases of `name` that read correctly (see `alias_report` for the others)."""
        return self.alias_report(name)[0]

    def alias_report(
        self, name: str, keys: list[str] | None = None, versions: list[str] | None = None
    ) -> tuple[dict[str, str], list[str]]:
        """(alias -> version for the readable aliases, what is wrong with the other entries);
        `alias_targets` for each one's whole target, from the same single read."""
        from functions.runtime.catalog import alias_targets  # listings: not a predict cold start

        targets, problems = alias_targets(self, name, keys, versions)
        return {alias: target.version for alias, target in targets.items()}, problems

    def delete_alias(self, name: str, alias: str, **how: Any) -> None:
        """Remove an alias, recorded: a rollback restores it (`how`: alias_deleted.delete_alias)."""
        from functions.runtime import alias_deleted  # writes only: not a predict cold start

        alias_deleted.delete_alias(self.store, name, alias, lambda: self.versions(name)[-1], **how)

    # ---- resolution (resolution.py) ------------------------------------------------------

    def resolve(self, ref: ModelRef | str) -> ModelManifest:
        """The manifest a reference points at (see the module docstring for the default)."""
        return resolution.resolve(self, parse_ref(ref) if isinstance(ref, str) else ref)

    def resolve_split(self, ref: ModelRef) -> Resolution:
        """What `ref` serves, with the canary and its weight when its alias splits traffic."""
        return resolution.resolve_split(self, ref)

    def watched_keys(self, ref: ModelRef) -> tuple[str, ...]:
        """The keys whose change can change what `ref` resolves to (see refs.watched_keys)."""
        return watched_keys(self.store, ref)
