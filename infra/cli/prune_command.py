"""`aiaas prune`: delete old versions of a model, never one an alias, a rollout or a bare name
serves (the rules and the order of deletes: functions/runtime/pruning.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from functions.runtime import names
from functions.runtime.errors import BadRequest
from functions.runtime.pruning import PrunePlan, carry_out, plan_prune
from functions.runtime.registry import Registry
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import open_store
from infra.cli.arg_types import days, whole

DESCRIPTION = (
    "Delete a model's old versions (model, external data, card: every file) to stop its storage "
    "growing. Kept whatever --keep says: every version an alias points at (a canary and a shadow "
    "too), the version a rollback of an alias would go to, a running rollout's baseline and "
    "candidate, the version a sharded batch run in flight pinned, and the latest version. Each version's manifest goes first, so a caller sees it "
    "whole or not at all (a 404); a prune stopped midway is finished by the next. The run is "
    "recorded (who, when, what) and `aiaas versions` shows it; a pruned version's name is never "
    "published again. Asks before deleting on a terminal; a script passes --yes."
)


def add_prune(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("prune", help="delete old versions of a model", description=DESCRIPTION)
    p.add_argument("name", help="model name")
    p.add_argument(
        "--keep",
        type=whole(0, 1_000_000),
        required=True,
        metavar="N",
        help="keep the N most recently published versions (by their manifest's created_at)",
    )
    p.add_argument(
        "--older-than",
        type=days,
        metavar="DAYS",
        help="delete only versions published more than DAYS days ago",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would go; delete nothing")
    p.add_argument("--yes", action="store_true", help="delete without asking (for scripts)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead")
    p.set_defaults(func=cmd_prune)


def cmd_prune(args: argparse.Namespace) -> int:
    registry = Registry(open_store(args.store))
    name = names.model_name(args.name)
    plan = plan_prune(registry, name, args.keep, args.older_than)
    goes = bool(plan.delete or plan.leftovers or plan.abandoned)
    if goes and not args.dry_run and not args.yes:
        if not sys.stdin.isatty():
            raise BadRequest(
                f"prune would delete {_count(plan)} of {name}; not asking outside a terminal: "
                "pass --yes to delete, or --dry-run to list them"
            )
        # The listing and the question on stderr, where the person at the terminal reads
        # them: on stdout they went into `> out.json` (the prompt looked hung), and --json was
        # then dropped for the listing's sake (CLI hunt).
        _say(plan, dry_run=True, out=sys.stderr)
        sys.stderr.write(f"delete {_count(plan)} of {name}? [y/N] ")
        sys.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            print("nothing deleted", file=sys.stderr)
            return 1
    if not args.dry_run:  # nothing to delete: it still sweeps what killed publishes left
        plan = carry_out(registry, plan, RuntimeSettings.from_env().actor)
    if args.json:
        print(json.dumps(_doc(plan, dry_run=args.dry_run), indent=2))
    else:
        _say(plan, dry_run=args.dry_run)
    return 0


def _count(plan: PrunePlan) -> str:
    size = sum(d.size for d in plan.delete)
    text = f"{len(plan.delete)} version(s) ({_mb(size)})"
    if plan.leftovers:
        text += f" and the leftovers of {len(plan.leftovers)} pruned earlier"
    if plan.abandoned:
        text += f" and {len(plan.abandoned)} folder(s) a killed publish left without a manifest"
    return text


def _say(plan: PrunePlan, *, dry_run: bool, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    verb = "would delete" if dry_run else "deleted"
    if not plan.delete and not plan.leftovers and not plan.abandoned:
        print(f"{plan.name}: nothing to prune ({len(plan.kept)} version(s) kept)", file=out)
    else:
        print(f"{plan.name}: {verb} {_count(plan)}, kept {len(plan.kept)}", file=out)
    for doomed in plan.delete:
        line = f"  {verb:13} {doomed.version:10} {doomed.created_at:22} {_mb(doomed.size)}"
        print(line, file=out)
    for version, keys in sorted(plan.leftovers.items()):
        line = f"  {verb:13} {version:10} {len(keys)} leftover file(s) of an interrupted prune"
        print(line, file=out)
    for version, keys in sorted(plan.abandoned.items()):
        line = (
            f"  {verb:13} {version:10} {len(keys)} file(s) of a publish killed before its manifest"
        )
        print(line, file=out)
    for version, why in plan.kept.items():
        print(f"  {'kept':13} {version:10} {', '.join(why)}", file=out)


def _doc(plan: PrunePlan, *, dry_run: bool) -> dict[str, Any]:
    return {
        "model": plan.name,
        "dry_run": dry_run,
        "deleted": [
            {
                "version": d.version,
                "created_at": d.created_at,
                "files": len(d.keys),
                "bytes": d.size,
            }
            for d in plan.delete
        ],
        "leftovers": {v: len(keys) for v, keys in sorted(plan.leftovers.items())},
        "abandoned": {v: len(keys) for v, keys in sorted(plan.abandoned.items())},
        "kept": [{"version": v, "why": why} for v, why in plan.kept.items()],
    }


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"
