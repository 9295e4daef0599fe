"""`aiaas pull REF --from STORE`: copy one version from another store into this one, for
offline or edge serving; registered by registry_commands.py.

The version is received whole into TMPDIR, its model checked against its manifest's sha256,
then published here as any version is (every file checked, the manifest last), so a pull cut
off anywhere leaves nothing `aiaas serve` would see. A version already here is left as it is
when it holds the same model, and refused when it holds another: versions are immutable, and
moving an alias to a same-numbered but different model would serve the wrong one.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import sys
from dataclasses import replace
from pathlib import Path

from functions.runtime import names
from functions.runtime.aliases import Written
from functions.runtime.errors import (
    BadRequest,
    IntegrityError,
    ModelNotFound,
    NotFound,
    StoreError,
    VersionExists,
)
from functions.runtime.file_hashes import sha256_file
from functions.runtime.manifest import ModelManifest
from functions.runtime.move_reason import fitted_reason
from functions.runtime.prune_log import pruned_versions
from functions.runtime.publishing import check_no_twin, publish_version
from functions.runtime.reason_flag import add_reason, alias_reason
from functions.runtime.refs import DEFAULT_ALIAS, DEFAULT_RULE
from functions.runtime.registry import ModelRef, Registry, parse_ref, version_prefix
from functions.runtime.store import Moved, ObjectExists, open_store
from functions.runtime.transfer import CHANGED
from infra.cli.alias_moved import say_moved
from infra.cli.arg_types import store_uri
from infra.cli.row_progress import BYTES, Progress, add_flag
from infra.cli.stop_signals import answered, stopped_by_signals
from training.run_folders import temp_work_folder


def add_pull(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "pull", help="copy a model version from another store into this one (offline/edge serving)"
    )
    p.add_argument(
        "ref", help=f"NAME, NAME:VERSION or NAME@ALIAS in the source store; {DEFAULT_RULE}"
    )
    p.add_argument(
        "--from",
        dest="source",
        type=store_uri,
        required=True,
        help="source store URI, e.g. s3://bucket/prefix",
    )
    p.add_argument(
        "--alias",
        help="alias to set here too (default: the source alias the version came through, if "
        "any: NAME@ALIAS's, and production for a bare NAME whose source has it)",
    )
    add_reason(p, "the alias is set here (kept with where the version came from)")
    add_flag(p, "a copy")
    p.set_defaults(func=cmd_pull)


def cmd_pull(args: argparse.Namespace) -> int:
    with stopped_by_signals():  # `kill`: the version held in TMPDIR goes too
        return _pull(args)


def _pull(args: argparse.Namespace) -> int:
    source = Registry(open_store(args.source))
    target = Registry(open_store(args.store))
    ref: ModelRef = parse_ref(args.ref)
    alias = names.alias_name(args.alias) if args.alias else None
    bare = ref.version is None and ref.alias is None
    if bare and source.alias(ref.name, DEFAULT_ALIAS) is not None:
        # A bare NAME resolves through production: pulled as NAME@production is, alias and all.
        # The alias was left unset here, so an edge holding a newer version served that one.
        ref = replace(ref, alias=DEFAULT_ALIAS)
    alias = alias or ref.alias
    reason = alias_reason(args, alias)  # before the copy: a refusal after it left no alias
    try:
        manifest = source.resolve(ref)
    except ModelNotFound as exc:  # two stores are in play: say which one lacks it
        raise ModelNotFound(f"{source.store.uri} (--from): {exc.message}") from None
    what = f"{manifest.name}:{manifest.version}"
    if target.store.exists(f"{version_prefix(manifest.name, manifest.version)}/manifest.json"):
        _check_same(manifest, target.manifest(manifest.name, manifest.version), source, target)
        added = _copy_added(source, target, manifest)
        since = f"; copied what `aiaas baseline` added since: {', '.join(added)}" if added else ""
        print(f"{what} is already in {target.store.uri}{since}")
    else:
        names.new_version_name(manifest.version)  # `aliases`: written by an older release
        _not_pruned(target, manifest)
        _no_twin(source, target, manifest)
        _copy(source, target, manifest, show=not args.no_progress)
        answered()  # pulled: a stop signal now must not say "interrupted" of a whole copy
        print(f"pulled {what} from {source.store.uri} into {target.store.uri}")
    if alias:  # said as promote says it: what it was, and a rollout the move supersedes
        written = Written()
        # Where it came from, kept in the alias's history (`aiaas versions`: "why: pulled ...
        # from s3://staging/..."): a version promoted across stores said only who and when.
        came = fitted_reason(f"pulled {what} from {source.store.uri}")
        if reason:  # the user's why first: the history line reads "why: CHG-7; pulled ..."
            came = fitted_reason(f"{reason}; {came}")
        record = target.set_alias(
            manifest.name, alias, manifest.version, written=written, check=False, reason=came
        )  # each file it wrote was read and its sha256 checked as it was pulled
        say_moved(target, manifest.name, alias, record, written)
    elif bare:  # the source's newest version, as it has no production: is it the newest here?
        _say_served_here(target, manifest)
    # The source's alias the version came through (a bare NAME's production, where it exists):
    # its split or shadow was dropped as silently as NAME@ALIAS's had been.
    if ref.alias:
        _say_not_carried(source, manifest, ref.alias)
    return 0


def _say_served_here(target: Registry, manifest: ModelManifest) -> None:
    """A note when a bare NAME, pulled as the source's newest version (it has no production
    alias), is not what NAME serves here: this store's production, or a newer version."""
    name = manifest.name
    served = target.resolve(ModelRef(name)).version
    if served == manifest.version:
        return
    why = "its production alias" if target.alias(name, DEFAULT_ALIAS) else "its newest version"
    print(
        f"note: {name} here serves {served} ({why}), not the {manifest.version} pulled: "
        f"`aiaas promote {name} {manifest.version}` here, or pull with --alias production, "
        f"to serve it as {name}",
        file=sys.stderr,
    )


def _say_not_carried(source: Registry, manifest: ModelManifest, alias: str) -> None:
    """A note when the source's alias splits its requests or shadows a version: the pull
    copied its main version only, and a user moving a store would otherwise serve another
    mix here without being told."""
    held = source.alias_target(manifest.name, alias)
    if held is None or (held.canary is None and held.shadow is None):
        return
    print(
        f"note: {manifest.name}@{alias} in {source.store.uri} is {held.describe()}; a pull "
        f"copies one version, so here it serves {manifest.version} alone: pull the others and "
        "`aiaas promote` / `aiaas shadow` here to split it the same way (moving a whole "
        "store: docs/registry.md, Moving a store)",
        file=sys.stderr,
    )


def _not_pruned(target: Registry, manifest: ModelManifest) -> None:
    """VersionExists, nothing copied, naming the ways on, when this store pruned the version's
    name: it is never reused here. A staging store numbers from 1 as prod does, so its `churn:1`
    pulled into prod was refused with no next step (hunt_journey3 5)."""
    name, version = manifest.name, manifest.version
    if version in pruned_versions(target.store, name):
        raise VersionExists(
            f"{name}:{version} was published and pruned in {target.store.uri} (`aiaas versions "
            f"{name}` there shows when): a version name is never reused, so a caller pinned to "
            "it never gets another model; nothing was copied and no alias moved. Publish the "
            f"model there as a new version (`aiaas publish FILE --name {name}`; a store that "
            "feeds another one by pull publishes named versions: `--version NAME`), or pull "
            "into another store"
        )


def _no_twin(source: Registry, target: Registry, manifest: ModelManifest) -> None:
    """VersionExists, nothing copied, when this store holds the version's number spelled
    otherwise (`t:8` pulled beside `t:008`): a bare name then served whichever sorts last. A
    source that holds both spellings (written before twins were refused) is copied as it is."""
    name, version = manifest.name, manifest.version
    if version.isdigit() and not any(
        v != version and v.isdigit() and int(v) == int(version) for v in source.versions(name)
    ):
        try:
            check_no_twin(target.store, name, version)
        except VersionExists as exc:
            raise VersionExists(
                f"{exc.message.split('; ')[0]} in {target.store.uri}, another version of that "
                "number: nothing was copied; pull into another store, or publish the model here "
                "as a new version"
            ) from None


def _check_same(
    wanted: ModelManifest, held: ModelManifest, source: Registry, target: Registry
) -> None:
    """VersionExists, moving no alias, when the target's version is not the source's model:
    other model or weight bytes, or another manifest (labels, inputs, preprocessing). Its card
    and other extra files may differ (a pull lists files the source left unlisted)."""
    differ = []
    if held.file.sha256 != wanted.file.sha256:
        here, there = held.file.sha256[:12], wanted.file.sha256[:12]
        differ.append(f"model.onnx has sha256 {here} here, {there} there")
    weights = {f.path: f.sha256 for f in held.weight_files}
    differ += [f"{f.path} differs" for f in wanted.weight_files if weights.get(f.path) != f.sha256]
    if not differ and _served_fields(held) != _served_fields(wanted):
        differ.append("the manifests differ (labels, inputs, outputs or preprocessing)")
    if differ:
        what = f"{wanted.name}:{wanted.version}"
        raise VersionExists(
            f"{what} in {target.store.uri} is another model than {what} in {source.store.uri} "
            f"({'; '.join(differ)}); versions are immutable, so nothing was copied and no alias "
            "moved: pull into another store, or publish the model here as a new version"
        )


def _copy_added(source: Registry, target: Registry, manifest: ModelManifest) -> list[str]:
    """The files `aiaas baseline` adds to a published version (each only if absent) that the
    source has and the target lacks: a version pulled before it was baselined gets them on a
    pull again, and so can be monitored and explained here (where its training data is not)."""
    # Imported here: they bring numpy, which `aiaas versions` and `show` do without.
    from functions.runtime.drift.baseline import BASELINE_FILE
    from functions.runtime.explain.background import BACKGROUND_FILE

    prefix = version_prefix(manifest.name, manifest.version)
    copied = []
    for name in (BACKGROUND_FILE, BASELINE_FILE):
        key = f"{prefix}/{name}"
        if target.store.exists(key) or not source.store.exists(key):
            continue
        with contextlib.suppress(ObjectExists):  # written here meanwhile: that one stays
            target.store.put_bytes(key, source.store.get_bytes(key), if_absent=True)
            copied.append(name)
    return copied


def _served_fields(manifest: ModelManifest) -> ModelManifest:
    """What decides the answers, without when and by which publish (its publish_id) it was
    published, and its listed files."""
    return replace(manifest, created_at="", files=(), metrics={}, description="", publish_id="")


def _copy(source: Registry, target: Registry, manifest: ModelManifest, *, show: bool) -> None:
    what, prefix = (
        f"{manifest.name}:{manifest.version}",
        version_prefix(manifest.name, manifest.version),
    )
    with temp_work_folder("aiaas-pull-") as tmp:
        extras: dict[str, Path] = {}
        keys = list(source.store.list_keys(prefix))
        total = sum(source.store.head(key).size for key in keys)
        with Progress(what, total, verb="received", unit=BYTES, show=show) as got:
            for key in keys:
                rel = key[len(prefix) + 1 :]
                local = Path(tmp) / rel
                local.parent.mkdir(parents=True, exist_ok=True)
                _download(source, key, local, got.add)
                if rel not in ("model.onnx", "manifest.json"):
                    extras[rel] = local
        model = Path(tmp) / "model.onnx"
        if not model.is_file():
            raise NotFound(f"{what} has no model file in {source.store.uri}")
        digest = sha256_file(model)
        if digest != manifest.file.sha256:  # it said only "fails its sha256 check"
            raise IntegrityError(
                f"{what} in {source.store.uri} is not as its manifest says, so nothing was "
                f"copied: model.onnx has sha256 {digest} ({model.stat().st_size} bytes); its "
                f"manifest says {manifest.file.sha256} ({manifest.file.size} bytes) ({CHANGED})"
            )
        lost = [f.path for f in manifest.files if f.path not in extras]
        if lost:  # publish would blame the temp folder, and advise publishing the model again
            raise NotFound(
                f"{what} in {source.store.uri} lacks {', '.join(lost)}, which its manifest "
                "lists; not copied"
            )
        total = sum(path.stat().st_size for path in (model, *extras.values()))
        try:
            with Progress(what, total, verb="sent", unit=BYTES, show=show) as sent:
                # A copy: it keeps the source's publish_id (two pulls of it write one manifest).
                publish_version(target.store, manifest, model, extras, sent.add, copied=True)
        except BadRequest as exc:  # its own files refused (publish checks each listed sha256)
            raise IntegrityError(
                f"{what} in {source.store.uri} is not as its manifest says, so nothing was "
                f"copied: {exc.message} ({CHANGED})"
            ) from exc


def _download(source: Registry, key: str, local: Path, progress: Moved) -> None:
    try:
        source.store.download_file(key, local, progress)
    except StoreError as exc:
        if getattr(exc.__cause__, "errno", None) != errno.ENOSPC:
            raise
        raise StoreError(
            f"{exc.message}: pull holds the version in a temporary folder (TMPDIR) until it is "
            "published; set TMPDIR to a folder with room for the whole version"
        ) from exc
