"""The `train` command, shared by `aiaas train` and `python -m training` (the container entrypoint).

Torch is imported only when a job runs, after the spec and a sample of its data are checked
(`training.data_checks`), so `aiaas --help` and `--check` stay fast and need no torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from functions.runtime import names
from functions.runtime.errors import VersionExists
from functions.runtime.metric_text import metrics_text
from functions.runtime.parity_text import parity_summary
from functions.runtime.publishing import check_no_twin, check_version_free
from functions.runtime.reason_flag import add_reason, alias_reason
from functions.runtime.refs import manifest_key
from functions.runtime.registry import Registry
from functions.runtime.store import open_store
from training.card import kept_text
from training.data_checks import DataReport, check_data
from training.metrics import missed_classes
from training.spec import JobSpec, find_spec, load_spec
from training.table_prep import SERVED_GAPS, column_lines

DEFAULT_RUNS = Path(".aiaas") / "runs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The train command's arguments (the global --store is added by each entry point)."""
    parser.add_argument(
        "spec", type=find_spec, help="job spec, YAML or JSON (see training/README.md)"
    )
    parser.add_argument("--publish", action="store_true", help="publish the model to the registry")
    parser.add_argument(
        "--alias", help="point this alias at the published version (e.g. production)"
    )
    add_reason(parser, "the published version's alias is set (--alias, publish.alias)")
    parser.add_argument(
        "--version",
        help="publish as this version (default: the spec's version, else the next number); "
        "one that exists is refused before training",
    )
    parser.add_argument("--out", type=Path, help=f"artifact folder (default: {DEFAULT_RUNS}/NAME)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="validate the spec and a sample of its data (no torch), then exit",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--json",
        action="store_true",
        help="stdout: one JSON document (model, version, ref, published, store, alias, "
        "metrics, parity, columns, artifacts, seconds), for CI; with --check, what it read; "
        "notes go to stderr",
    )


def run_train(args: argparse.Namespace, on_published: Callable[[], object] | None = None) -> int:
    """Validate the spec, run the job, print what it produced; `on_published` is told as soon
    as the version exists (`aiaas train`: stop signals are ignored from then on)."""
    spec = load_spec(args.spec)
    if getattr(args, "version", None):  # as --alias overrides publish.alias
        spec = dataclasses.replace(spec, version=names.new_version_name(args.version))
    spec_dir = args.spec.resolve().parent
    alias = names.alias_name(args.alias) if args.alias else None
    if alias and not args.publish:
        print("note: --alias only takes effect with --publish", file=sys.stderr)
    # Asked before the data is read: a refusal once trained would leave the version unaliased.
    reason = alias_reason(args, (alias or spec.alias) if args.publish else None)
    # The data is judged before torch loads: a bad spec costs a second, never a training run.
    report = check_data(spec, spec_dir)
    cores = os.cpu_count() or 1
    # 1000 threads on 2 cores trained 70x slower, unsaid; a --submit job runs on another host
    if spec.cpu_threads > cores and not getattr(args, "submit", False):
        more = (
            f"cpu_threads {spec.cpu_threads} is more than this machine's {cores} CPU cores: "
            f"the extra threads only wait on each other; use 0 (auto) or at most {cores}"
        )
        report = dataclasses.replace(report, warnings=(*report.warnings, more))
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    check_device(spec.device)
    registry = Registry(open_store(args.store))
    if args.publish and spec.version:  # a second, not a torch import (nor a --check "valid")
        _check_free(registry, spec.name, spec.version)
        check_no_twin(registry.store, spec.name, spec.version)
    if args.check:
        if getattr(args, "json", False):  # stdout: one JSON document, as every --json
            print(json.dumps(check_document(args.spec, spec, report)))
            return 0
        print(f"{args.spec}: valid ({spec.name}, {spec.task}, recipe {spec.recipe.name})")
        print(report.line())
        return 0
    from training.job import run_job  # torch loads here, not at CLI start

    result = run_job(
        spec,
        registry,
        args.out or DEFAULT_RUNS / spec.name,
        spec_dir=spec_dir,
        publish_model=args.publish,
        alias=alias,
        reason=reason,
        progress=False if args.no_progress else None,
        on_published=on_published,
    )
    for warning in result_warnings(result.manifest):  # stderr, as the data's warnings
        print(f"warning: {warning}", file=sys.stderr)
    for note in (result.manifest.extras.get("changes") or {}).get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps(result_document(result, registry.store.uri)))
        return 0
    for line in summary_lines(spec, result.manifest, result.timings):
        print(line)
    ref = f"{result.manifest.name}:{result.manifest.version}"
    if result.published:
        print(f"published {ref} to {registry.store.uri}")
        if result.alias:
            print(f"{result.manifest.name}@{result.alias} -> {result.manifest.version}")
    else:
        print(f"not published (dry run): artifacts in {result.model_path.parent}; add --publish")
    return 0


def _check_free(registry: Registry, name: str, version: str) -> None:
    """A version taken is refused before training; a retried job (the same `--version
    ci-$RUN_ID`) is told that its first run published it and how to go on, not only that
    versions are immutable (hunt_journey7 3): a retrained model's bytes differ, so a train
    cannot be "already published" as a publish of the same file is."""
    try:
        check_version_free(registry.store, name, version)
    except VersionExists as exc:
        if not registry.store.exists(manifest_key(name, version)):
            raise  # published and pruned: its own advice
        raise VersionExists(
            f"{exc.message}; a job run again finds what its first run published: check first "
            f"(`aiaas show {name}:{version}` exits 0) and skip the training, as the CI job in "
            "docs/rollout.md does, or give another --version to publish this run's model"
        ) from None


def check_device(device: str) -> None:
    """`device: cuda` where torch sees no GPU is refused by `--check` too, with the run's own
    message; torch is imported for that spec only, so `--check` stays torch-free otherwise
    (and says nothing where torch is not installed: the run itself needs it)."""
    if device != "cuda" or importlib.util.find_spec("torch") is None:
        return
    from training.device import resolve_device

    resolve_device(device)


def check_document(path: Path, spec: JobSpec, report: DataReport) -> dict[str, Any]:
    """What `--check --json` prints: the lines of `--check` as fields (warnings also on stderr)."""
    return {
        "spec": str(path),
        "valid": True,
        "model": spec.name,
        "task": spec.task,
        "recipe": spec.recipe.name,
        "data": {
            "source": report.source,
            "rows": report.rows,
            "all_read": report.complete,
            "inputs": report.inputs,
            "target": report.target,
        },
        "warnings": list(report.warnings),
    }


def result_document(result: Any, store: str) -> dict[str, Any]:
    """What `--json` prints: what a CI step needs to promote, pin or report the version."""
    manifest = result.manifest
    return {
        "model": manifest.name,
        # A run not published is no version: `jq -r .ref` gave one that was a 404 everywhere.
        "version": manifest.version if result.published else None,
        "ref": f"{manifest.name}:{manifest.version}" if result.published else None,
        "published": result.published,
        "store": store if result.published else None,
        "alias": result.alias if result.published else None,
        "metrics": manifest.metrics.get("test", {}),
        "parity": manifest.extras.get("parity", {}),
        "columns": column_lines(manifest.preprocessing.get("columns") or {})
        if manifest.preprocessing.get("columns")
        else [],
        "artifacts": str(result.model_path.parent),
        "seconds": round(result.timings.get("total_s", 0.0), 3),
        "warnings": result_warnings(manifest),
    }


def result_warnings(manifest: Any) -> list[str]:
    """What the test metrics hide: a class the model never answers right (a 99:1 model that
    always answers the majority scored accuracy 0.99 and published with no word); and what
    callers of the version the name served would get wrong or refused from this one
    (`training/changes.py`), each said against it."""
    confusion = manifest.metrics.get("test", {}).get("confusion_matrix")
    missed = missed_classes(confusion, manifest.labels) if confusion and manifest.labels else []
    changed = manifest.extras.get("changes") or {}
    return [*missed, *changed.get("warnings", [])]


def summary_lines(spec: JobSpec, manifest: Any, timings: dict[str, float]) -> list[str]:
    """A few lines: held-out metrics, parity, quantization, time, the epoch kept."""
    test = manifest.metrics["test"]
    shown = metrics_text(test)
    parity = manifest.extras["parity"]
    quant = manifest.extras["quantization"]
    lines = [
        f"{spec.name}: test {shown} ({test['rows']} rows)",
        f"  parity: {parity_summary(parity)}",
    ]
    if quant.get("enabled") and "error" not in quant:
        verdict = ("kept" if quant["kept"] else "rejected") + f" ({quant['reason']})"
        lines.append(
            f"  int8: {verdict}, {quant['metric']} drop {quant['drop_points']:+.2f} points, "
            f"{quant['float_bytes']} -> {quant['int8_bytes']} bytes"
        )
    columns = manifest.preprocessing.get("columns")
    if columns:  # a table's gaps filled and text columns encoded
        lines += [f"  column {line}" for line in column_lines(columns)]
        lines.append(f"  {SERVED_GAPS}")
    training = manifest.training
    runs = training["epochs_run"]
    lines.append(
        f"  device {training['device']}, {runs} epoch{'' if runs == 1 else 's'}, "
        f"{training['seconds_per_epoch']:.3f} s/epoch, total {timings['total_s']:.1f} s"
    )
    if training.get("best_epoch"):  # the metrics above are that epoch's, not the last one's
        lines.append(f"  {kept_text(training)}")
    return lines
