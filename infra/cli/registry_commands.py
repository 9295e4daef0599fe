"""Registry commands: models, versions, show, promote, shadow, rollback, pull, prune (publish is
in publish_commands.py, pull's work in pull_command.py, prune's in prune_command.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from functions.runtime import names
from functions.runtime.alias_deleted import deleted_aliases
from functions.runtime.aliases import AliasTarget, Written
from functions.runtime.catalog import Listed, alias_targets, catalog
from functions.runtime.errors import (
    BadRequest,
    CorruptRecord,
    InvalidName,
)
from functions.runtime.manifest import (
    ModelManifest,
)
from functions.runtime.prune_log import prune_record
from functions.runtime.reason_flag import add_reason, move_reason
from functions.runtime.refs import DEFAULT_RULE
from functions.runtime.registry import Registry, parse_ref
from functions.runtime.rollback_pinned import just_rolled_back, retried
from functions.runtime.rollout.record import RolloutBook
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import open_store
from infra.cli.alias_history import deleted_lines, history_doc, history_lines, prune_lines
from infra.cli.alias_moved import say_moved, say_rollout_superseded
from infra.cli.arg_types import count, shadow_sample, weight
from infra.cli.card_check import card_problems, card_refusal, manifest_digest
from infra.cli.manifest_text import describe_manifest
from infra.cli.prune_command import add_prune
from infra.cli.pull_command import add_pull
from infra.cli.rollout_text import rollout_lines
from infra.cli.serve_start import missing_store_line
from infra.cli.store_check import model_problems
from infra.cli.token_ids_change import callers_on, say_callers_moved
from infra.cli.version_settings import headline, varied_settings


def registry(args: argparse.Namespace) -> Registry:
    return Registry(open_store(args.store))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("models", help="list published models")
    p.add_argument(
        "--json", action="store_true", help="print one JSON document (for scripts) instead"
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="also check that every version is whole (each file its manifest lists there, at "
        "its size: a HEAD each) and that each alias's recorded manifest digests match the "
        "store's; exit 1 naming each problem (after copying or restoring a store)",
    )
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("versions", help="list the versions and aliases of a model")
    p.add_argument("name", help="model name")
    p.add_argument(
        "--last",
        type=count,
        metavar="N",
        help="only the N newest versions (reads N manifests, not one a version: 1,500 take "
        "~1,500 requests on S3)",
    )
    p.add_argument(
        "--json", action="store_true", help="print one JSON document (for scripts) instead"
    )
    p.set_defaults(func=cmd_versions)

    p = sub.add_parser("show", help="show a version's manifest: inputs, outputs, metrics, card")
    p.add_argument("ref", help=f"NAME, NAME:VERSION or NAME@ALIAS; {DEFAULT_RULE}")
    p.add_argument("--json", action="store_true", help="print the raw manifest")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "promote",
        help="point an alias at a version (promote or roll back), or send it a share of requests",
        description="Point an alias at a version: all its requests go there. With --weight, "
        "only that share goes there (a canary) and the rest stays on the version the alias "
        "points at now; each caller sticks to one of the two (by the x-aiaas-routing-key "
        "header, else its IAM or JWT identity). Promote without --weight to finish, or roll "
        "back to end the split.",
    )
    _name_and_alias(p, "move")
    p.add_argument("version", help="version the alias should point at (an older one rolls back)")
    p.add_argument(
        "--weight",
        type=weight,
        help="share of the alias's requests for VERSION, between 0 and 1 (0.1 = 10%%)",
    )
    add_reason(p, "the alias moves")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser(
        "shadow",
        help="replay a sample of an alias's requests to a version that answers no caller",
        description="Name a shadow version for an alias: after each sampled request is "
        "answered, a copy goes to VERSION in the background, never on the caller's path, and "
        "the two answers are compared (aiaas_shadow_* metrics: agreement, differences, latency, "
        "errors, per version pair). Promotes keep the shadow until the alias serves it.",
    )
    _name_and_alias(p, "shadow")
    p.add_argument("version", nargs="?", help="the shadow version (omit with --off)")
    p.add_argument(
        "--sample",
        type=shadow_sample,
        default=None,
        help="share of requests copied, (0, 1] (default 1)",
    )
    p.add_argument("--off", action="store_true", help="stop shadowing")
    add_reason(p, "the shadow is set or stopped")
    p.set_defaults(func=cmd_shadow)

    p = sub.add_parser(
        "rollback",
        help="point an alias back at the version it pointed at before",
        description="Roll an alias back along its history (kept in the registry): to the "
        "version it pointed at before, or with --to to an earlier one. A running "
        "`aiaas serve` answers with it from its next request.",
    )
    _name_and_alias(p, "move")
    p.add_argument("--to", metavar="VERSION", help="an earlier version of the alias to go to")
    add_reason(p, "the alias is rolled back")
    p.set_defaults(func=cmd_rollback)

    add_pull(sub)
    add_prune(sub)


def _name_and_alias(p: argparse.ArgumentParser, verb: str) -> None:
    """NAME and --alias of promote, shadow and rollback (NAME read by `_alias_command_model`)."""
    p.add_argument("name", help="model name")
    p.add_argument("--alias", default="production", help=f"alias to {verb} (default: production)")


def cmd_models(args: argparse.Namespace) -> int:
    reg = registry(args)
    models = catalog(reg.store)  # one walk of the store, not listings a model (26 s -> 2 s on S3)
    if not models:
        # On stderr: stdout holds one line a model (none here) or the JSON document. A store
        # directory that is not there (a typo) is named as such, with --json too: a CI step
        # listing a mistyped path saw `"models": []` and nothing else.
        where = reg.store.uri
        print(
            f"no models in {where}; publish one with `aiaas publish` or `aiaas train`"
            if missing_store_line(reg.store) is None
            else f"no models: the store directory {where} does not exist (mistyped --store or "
            "AIAAS_STORE?)",
            file=sys.stderr,
        )
    if args.json:
        docs = [_model_doc(reg, name, listed, args.check) for name, listed in models.items()]
        print(json.dumps({"store": reg.store.uri, "models": docs}, indent=2))
        return _checked(args.check, sum(len(doc["problems"]) for doc in docs))
    count = 0
    for name, listed in models.items():
        versions = listed.versions
        found, problems = alias_targets(reg, name, listed.alias_keys, versions)  # a read a record
        if args.check:
            problems += model_problems(reg, name, versions, found)
        aliases = " ".join(f"@{a}={_described(t)}" for a, t in sorted(found.items()))
        print(f"{name:32} {len(versions):3} version(s), latest {versions[-1]:8} {aliases}")
        for problem in problems:
            print(f"  ! {problem}")
        count += len(problems)
    return _checked(args.check, count)


def _checked(check: bool, problems: int) -> int:
    """`models`' exit: 1 where --check found problems (said on stderr), else 0."""
    if not check:
        return 0
    print(
        f"checked: {problems} problem(s) listed above" if problems else "checked: no problems",
        file=sys.stderr,
    )
    return 1 if problems else 0


def _described(target: AliasTarget) -> str:
    """`2`, or for a split alias `1:90%,2:10%`; `,shadow:3` after either for its shadow."""
    weights = target.weights()
    routed = (
        target.version
        if weights is None
        else ",".join(f"{v}:{w * 100:.4g}%" for v, w in weights.items())
    )
    return routed if target.shadow is None else f"{routed},shadow:{target.shadow.version}"


def _model_doc(
    reg: Registry, name: str, listed: Listed | None = None, check: bool = False
) -> dict[str, Any]:
    versions = reg.versions(name) if listed is None else listed.versions
    keys = None if listed is None else listed.alias_keys
    found, problems = alias_targets(reg, name, keys, versions)
    if check:
        problems += model_problems(reg, name, versions, found)
    return {
        "name": name,
        "versions": versions,
        "latest": versions[-1] if versions else None,
        "aliases": {alias: found[alias].version for alias in sorted(found)},
        # Where each alias sends traffic, a split's canary and a shadow included: `aliases`
        # names the main version alone, so a script saw no canary (as the text listing shows).
        "alias_targets": {alias: _target_doc(found[alias]) for alias in sorted(found)},
        "problems": problems,
    }


def _target_doc(target: AliasTarget) -> dict[str, Any]:
    shadow = target.shadow
    return {
        "version": target.version,
        "weights": target.weights(),
        "shadow": None if shadow is None else {"version": shadow.version, "sample": shadow.sample},
    }


def _version_doc(reg: Registry, name: str, version: str) -> dict[str, Any]:
    try:
        manifest = reg.manifest(name, version)
    except CorruptRecord as exc:  # every key as for a readable one, null, and the error
        return {**dict.fromkeys(VERSION_KEYS), "version": version, "error": exc.message}
    return {
        "version": version,
        "created_at": manifest.created_at,
        "task": manifest.task,
        "metrics": manifest.metrics,
        "sha256": manifest.file.sha256,
    }


VERSION_KEYS = ("version", "created_at", "task", "metrics", "sha256")


def cmd_versions(args: argparse.Namespace) -> int:
    reg = registry(args)
    name = names.model_name(args.name)
    if args.json:
        doc = _model_doc(reg, name)
        doc["versions"] = [_version_doc(reg, name, v) for v in _last(doc["versions"], args.last)]
        # A corrupt manifest is a problem of the model's as a broken alias record is: a
        # script checking `problems` after moving a store saw [] (its entry held the error).
        doc["problems"] += [v["error"] for v in doc["versions"] if "error" in v]
        doc["alias_history"] = history_doc(reg, name, list(doc["aliases"]))
        doc["deleted_aliases"] = deleted_aliases(reg.store, name)
        doc["rollouts"] = [r.to_dict() for r in RolloutBook(reg.store).all(name)]
        doc["prunes"] = prune_record(reg.store, name)["history"]
        print(json.dumps(doc, indent=2))
        return 0
    by_version: dict[str, list[str]] = {}
    published = reg.versions(name)
    found, problems = alias_targets(reg, name, versions=published)  # one read a record
    for alias, target in found.items():
        for version, tag in _alias_tags(alias, target):
            by_version.setdefault(version, []).append(tag)
    listed: list[tuple[str, ModelManifest | CorruptRecord]] = []
    for version in _last(published, args.last):
        try:
            listed.append((version, reg.manifest(name, version)))
        except CorruptRecord as exc:
            listed.append((version, exc))
    settings = varied_settings([m for _, m in listed if isinstance(m, ModelManifest)])
    tags = {v: " ".join(sorted(by_version.get(v, []))) for v, _ in listed}
    width = max((len(t) for t in tags.values()), default=0)
    for version, manifest in listed:
        if isinstance(manifest, CorruptRecord):
            print(f"{version:10} ! {manifest.message} {tags[version]}")
            continue
        line = (
            f"{version:10} {manifest.created_at:22} {manifest.task:15} "
            f"{headline(manifest):28} {tags[version]:{width}} {settings.get(version, '')}"
        )
        print(line.rstrip())
    for problem in problems:
        print(f"  ! {problem}")
    # A line each, none for a model with no alias: `print("\n".join([]))` left a blank line.
    history = [*history_lines(reg, name, list(found)), *deleted_lines(reg, name)]
    for line in [*history, *rollout_lines(reg, name), *prune_lines(reg, name)]:
        print(line)
    return 0


def _last(versions: list[str], last: int | None) -> list[str]:
    return versions if last is None else versions[-last:]


def _alias_tags(alias: str, target: AliasTarget) -> list[tuple[str, str]]:
    """(version, `@alias`) pairs; `@alias:10%` on each version of a split alias, and
    `@alias:shadow` on its shadow's (it was untagged: a version a prune keeps "@production
    shadow" looked unused, an older release's shadow included)."""
    weights = target.weights()
    tags = (
        [(target.version, f"@{alias}")]
        if weights is None
        else [(v, f"@{alias}:{w * 100:.4g}%") for v, w in weights.items()]
    )
    if target.shadow is not None:
        tags.append((target.shadow.version, f"@{alias}:shadow"))
    return tags


def cmd_show(args: argparse.Namespace) -> int:
    reg = registry(args)
    manifest = reg.resolve(parse_ref(args.ref))
    if args.json:
        shown = manifest.to_dict(as_stored=True)  # its schema_version as stored
        print(json.dumps(shown, indent=2, sort_keys=True, allow_nan=False))
        return 0
    problems = card_problems(manifest, reg)
    for line in describe_manifest(manifest, reg, problems, manifest_digest(manifest, reg)):
        print(line)
    if problems:
        print(f"aiaas show: error: {card_refusal(manifest, problems)}", file=sys.stderr)
        return 1
    return 0


def _alias_command_model(args: argparse.Namespace) -> str:
    """The NAME of promote, shadow or rollback. `iris@staging`, as `show` takes it, is told
    this command's form: the alias goes in --alias."""
    try:
        return names.model_name(args.name)
    except InvalidName as exc:
        name, at, alias = str(args.name).partition("@")
        if not (at and names.is_model_name(name) and names.is_alias_name(alias)):
            raise
        version = f"{args.version} " if getattr(args, "version", None) else ""
        hint = f"aiaas {args.command} {name} {version}--alias {alias}"
        raise InvalidName(f"{exc.message}; give the alias with --alias: {hint}") from None


def cmd_promote(args: argparse.Namespace) -> int:
    reg, reason = registry(args), move_reason(args)
    name, version = _alias_command_model(args), names.version_name(args.version)
    alias = names.alias_name(args.alias)
    try:
        reg.alias_record(name, alias)
        replaces_corrupt = False
    except CorruptRecord:
        replaces_corrupt = True
    before = None if replaces_corrupt else reg.alias_target(name, alias)
    was = callers_on(reg, name, alias, before)  # a first promote: the bare name's newest
    written = Written()
    record = reg.set_alias(name, alias, version, weight=args.weight, written=written, reason=reason)
    say_moved(reg, name, alias, record, written, replaces_corrupt)
    say_callers_moved(reg, name, was, callers_on(reg, name, alias, AliasTarget.of(record)))
    return 0


def cmd_shadow(args: argparse.Namespace) -> int:
    reason = move_reason(args)
    name, alias = _alias_command_model(args), names.alias_name(args.alias)
    if args.off and args.version is not None:
        raise BadRequest(f"give a shadow VERSION or --off, not both (got {args.version} and --off)")
    if not args.off and args.version is None:
        raise BadRequest("give a shadow VERSION, or --off to stop shadowing")
    if args.off and args.sample is not None:  # as capture says it: the sample was dropped
        raise BadRequest("give --sample or --off, not both")
    version = None if args.off else names.version_name(args.version)
    sample = 1.0 if args.sample is None else args.sample
    reg, written = registry(args), Written()
    record = reg.set_shadow(name, alias, version, sample, written=written, reason=reason)
    # As promote says it: the same shadow again (or --off with none) writes no history entry.
    same = "" if written.written else " (unchanged: it already was; nothing recorded)"
    print(f"{name}@{alias} -> {AliasTarget.of(record).describe()}{same}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    reg, written, reason = registry(args), Written(), move_reason(args)
    name, alias = _alias_command_model(args), names.alias_name(args.alias)
    record = reg.rollback(name, alias, to=args.to, written=written, reason=reason)
    again = None if written.written else retried(record, RuntimeSettings.from_env().actor)
    if not written.written and not just_rolled_back(record):  # --to where it is: as promote
        say_moved(reg, name, alias, record, written)
        return 0
    last = record["history"][0]  # what this rollback moved it from: a deleted alias, restored
    before = "its deletion" if "deleted_at" in last else AliasTarget.of(last).describe()
    now = AliasTarget.of(record).describe()  # the shadow it keeps, as promote shows it
    # Retried (its first answer lost): its own rollback stands, said so, exit 0 (review_rev5 4).
    print(f"{name}@{alias} -> {now} ({again or f'rolled back from {before}'})")
    was = None if "deleted_at" in last else AliasTarget.of(last)  # deleted: the bare name's
    moved = callers_on(reg, name, alias, AliasTarget.of(record))
    say_callers_moved(reg, name, callers_on(reg, name, alias, was), moved)
    say_rollout_superseded(reg, name, alias)
    return 0
