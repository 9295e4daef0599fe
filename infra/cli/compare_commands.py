"""`aiaas compare MODEL A B --data FILE`: score one file with two versions and say how they differ.

The report is the one the control plane answers (`POST /control/models/{name}/compare`), built
in this process by `functions.runtime.comparison`; this module prints it and draws it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from functions.runtime.comparison.run import CompareRequest, compare_versions
from functions.runtime.errors import AiaasError, BadRequest, StoreError
from functions.runtime.metric_text import metric_name, metric_value
from functions.runtime.pool import ModelPool
from functions.runtime.refs import manifest_key
from functions.runtime.registry import Registry
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import LocalStore, open_store
from infra.cli.arg_types import count
from infra.cli.compare_gate import gate_failures, max_drop
from infra.cli.file_args import not_readable
from infra.cli.output_file import output_file
from infra.cli.pyplot import pyplot
from infra.cli.row_progress import Progress, add_flag


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "compare",
        help="score one file with two versions: agreement, metric deltas, latency",
        description="Score FILE with versions A and B of MODEL and compare them: agreement "
        "(same label, classifiers) and the largest output differences, accuracy / macro F1 or "
        "MAE / RMSE / R2 of both when the file has labels, and each version's latency per call "
        "(p50, p99) in the same run. FILE is a batch input (CSV, JSONL, NPY, .gz) or a capture "
        "file, on disk or a key in the store.",
    )
    p.add_argument("name", help="model name")
    p.add_argument("a", help="version A (the one compared against, e.g. what production serves)")
    p.add_argument("b", help="version B (the candidate)")
    p.add_argument("--data", required=True, help="a local file, or a key in the store")
    p.add_argument(
        "--label",
        help="ground-truth column or field (default: the first the file has of the training "
        "target, the column `publish --data` scored the version against, label, target, y)",
    )
    p.add_argument(
        "--max-rows", type=count, default=100_000, help="rows compared at most (default 100000)"
    )
    add_flag(p, "a comparison")
    p.add_argument("--png", type=Path, help="draw the confusion matrix or the residuals here")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--max-drop",
        type=max_drop,
        action="append",
        default=[],
        metavar="METRIC=DROP",
        help="a CI gate: exit 1 (after the report) when B's METRIC (accuracy, macro_f1, r2, "
        "mae, rmse) is worse than A's by more than DROP, or B fails rows A answered; repeatable "
        "(default: no gate)",
    )
    p.set_defaults(func=cmd_compare)


def _not_an_alias(registry: Registry, name: str, given: str) -> None:
    """An alias given where a version goes (`production`, `@production`: a pipeline's first
    guess at "what production serves") was "version 'production' of model 'iris' not found"
    or "invalid version '@production'": said with the version it serves (hunt_journey7 4)."""
    alias = given.removeprefix("@")
    try:
        if alias == given and registry.store.exists(manifest_key(name, given)):
            return  # a version of that name
        target = registry.alias_target(name, alias)
    except AiaasError:
        return  # not a name either can be: the comparison says what is wrong with it
    if target is None:
        return
    serves = target.version
    if target.canary is not None:  # the canary is often the one a pipeline means to compare
        main, canary = _percent(1 - target.weight), _percent(target.weight)
        serves = f"{target.version} ({main}) and {target.canary} ({canary}, a canary)"
    raise BadRequest(
        f"{given!r} is an alias of {name}, not a version: compare takes two versions; "
        f"{name}@{alias} serves {serves} now (`aiaas show {name}@{alias} --json | jq -r "
        ".version` prints it for a script)"
    )


def _percent(share: float) -> str:
    return f"{round(share * 100, 4):g}%"  # 0.2 -> 20%, 0.005 -> 0.5%


def cmd_compare(args: argparse.Namespace) -> int:
    if args.png:  # a missing extra before scoring the file, not after the report it cannot draw
        pyplot()
    settings = RuntimeSettings.from_env()
    pool = ModelPool(Registry(open_store(args.store or settings.store)), settings=settings)
    path = Path(args.data)
    # A file on disk is read through a store on its folder (the batch readers read stores);
    # anything else is a key in the model store (batch/<model>/input/..., capture/<model>/...).
    problem = not_readable(path)
    if problem is not None and not problem.missing:
        # There, but not a file it reads: a pipe was "a folder, not a file"; a name too long,
        # or a file or folder it may not read, a traceback.
        raise BadRequest(f"--data: {problem.line}")
    # The file a link names, in its own folder: `rows.csv -> /data/r.csv` was "no object
    # 'rows.csv' in store /data" (and a directory store follows no links).
    real = path.resolve()
    data = LocalStore(real.parent) if problem is None else None
    if data is None and (path.is_absolute() or args.data.startswith(".")):
        # a path, not a key: "invalid storage key '/tmp/rows.csv'" said nothing of the file
        raise BadRequest(
            f"--data {args.data}: no such file (give a file on disk or a key in the store)"
        )
    store = pool.registry.store
    key = real.name if data is not None else _key_of(args.data, store.uri)
    if data is None and names_a_key(key) and not store.exists(key):  # said only the store's
        raise BadRequest(f"--data {args.data}: no such file, nor a key of the store {store.uri}")
    for given in (args.a, args.b):
        _not_an_alias(pool.registry, args.name, given)
    request = CompareRequest(args.name, args.a, args.b, key, args.label, args.max_rows)
    # No time limit here (the control plane's route has one): a big file just takes a while.
    what = f"{args.name} {args.a} vs {args.b}"
    show = not args.no_progress
    with (
        Progress(what, args.max_rows, verb="compared", bound=True, show=show) as shown,
        _naming_data(data, args.data),
    ):
        report = compare_versions(pool, request, data, progress=shown)
    lines = summary_lines(report, label_given=args.label is not None)
    failures = gate_failures(report, args.max_drop) if args.max_drop else []
    if args.max_drop:  # the verdict in the document too: a job's saved report, and exit 1
        # with a report (the gate) told from exit 1 without one (an error) (hunt_journey7 6)
        report["gate"] = {"passed": not failures, "failures": failures}
    if args.png:  # before the report: an exit 1 with a document is the gate (docs/rollout.md)
        _draw(report, args.png, failures)
    print(json.dumps(report, indent=2) if args.json else "\n".join(lines))
    if args.png and not args.json:
        print(f"wrote {args.png}")
    if failures:
        raise AiaasError("quality gate failed: " + "; ".join(failures))
    return 0


def _key_of(given: str, store_uri: str) -> str:
    """The store key `--data` names: itself, or the rest of a URL under the model store (the
    file's `s3://bucket/registry/data/x.csv`, as the console copies it, was "invalid storage
    key" with no word of what to give). A URL elsewhere is refused, saying what to give."""
    if "://" not in given:
        return given
    prefix = store_uri.rstrip("/") + "/"
    if given.startswith(prefix) and len(given) > len(prefix):
        return given[len(prefix) :]
    raise BadRequest(
        f"--data {given}: a URL outside the model store {store_uri}; give a file on disk "
        f"(download it first) or a key in the store (for {prefix}data/rows.csv: data/rows.csv)"
    )


def _draw(report: dict[str, Any], png: Path, failures: list[str]) -> None:
    """The report's PNG at `png`: a file it cannot write is an error without a report (exit 1,
    nothing on stdout), also naming a gate that failed; it was exit 1 after the report, which
    reads as the gate failed, with `gate.passed` true (rev13 4)."""
    from infra.cli.compare_plot import draw

    try:
        with output_file(png, parents=True) as written:  # a folder there: one line
            draw(report, written)
    except AiaasError as exc:
        if not failures:
            raise
        raise AiaasError(f"{exc}; and the quality gate failed: " + "; ".join(failures)) from exc


@contextlib.contextmanager
def _naming_data(data: LocalStore | None, given: str) -> Iterator[None]:
    """The file's folder is a store only to the readers: an OS error reading the user's file
    (changed since it was checked) said "cannot use 'rows.csv' under /home/me" of a store."""
    try:
        yield
    except StoreError as exc:
        cause = exc.__cause__
        if data is None or not isinstance(cause, OSError) or f" under {data.root}:" not in str(exc):
            raise
        raise BadRequest(f"--data {given}: {cause.strerror or cause}") from exc


def summary_lines(report: dict[str, Any], *, label_given: bool = True) -> list[str]:
    """The report in a few lines a person reads (`label_given`: named with --label, else the
    version's training target)."""
    rows = report["rows"]
    lines = [
        f"{report['model']}: {report['a']} (A) vs {report['b']} (B) on {report['data']} "
        f"({report['format']}): {rows['compared']} rows compared, {rows['failed']} not"
        + (" (stopped at --max-rows)" if rows["truncated"] else "")
    ]
    lines.extend(_agreement_lines(report))
    lines.append(_output_line(report))
    lines.extend(_refused_lines(rows.get("refused")))
    lines.extend(_metric_lines(report, label_given))
    for which in ("a", "b"):
        found = report["latency"][which]
        lines.append(
            f"  latency {which.upper()} ({report[which]}): p50 {found['p50_ms']} ms, "
            f"p99 {found['p99_ms']} ms over {found['calls']} calls"
        )
    for error in report["errors"][:5]:
        where = next(key for key in error if key != "reason")
        lines.append(f"  ! {where} {error[where]}: {error['reason']}")
    return lines


def _agreement_lines(report: dict[str, Any]) -> list[str]:
    """Agreement (classifiers), and how their classes were matched when they name them
    differently: by class index the rate is a pairing's, which the reader should check."""
    agreement, differ = report["agreement"], report.get("labels_differ")
    lines = []
    if agreement is not None:
        same = "same class by index" if agreement.get("by") == "class index" else "same label"
        lines.append(
            f"  agreement: {agreement['rate']:.2%} ({agreement['agreed']}/{agreement['rows']} "
            f"rows, {same})"
        )
    elif report.get("agreement_unavailable"):
        lines.append(f"  agreement: not comparable: {report['agreement_unavailable']}")
    if differ and agreement is not None:
        lines.append(f"  classes: {differ['note']}")
    only = _unshared_classes(report)
    if only is not None:
        lines.append(f"  classes only one version has: {only}")
    return lines


def _unshared_classes(report: dict[str, Any]) -> str | None:
    """The classes only A or only B has (matched by name) and the rows answered with one;
    None when each has the other's classes."""
    differ = report.get("labels_differ") or {}
    only = [differ.get("only_a") or [], differ.get("only_b") or []]
    if not any(only):
        return None
    listed = [shown_classes(got, repr) for got in only]
    rows, compared = differ.get("unshared_rows", 0), report["rows"]["compared"]
    return f"A {listed[0]}; B {listed[1]} ({rows} of {compared} rows answered with one, each a disagreement)"


def shown_classes(classes: list[str], show: Callable[[str], str] = str) -> str:
    """Classes as a line lists them: the first five, then how many in all (the picture too)."""
    more = f", ... ({len(classes)} in all)" if len(classes) > 5 else ""
    return ", ".join(map(show, classes[:5])) + more or "none"


def _output_line(report: dict[str, Any]) -> str:
    """The largest output differences; none when the versions have no output alike (a model
    retrained with another class count: logits [-1, 3] vs [-1, 4]), which is not 0."""
    if report.get("outputs_compared", True):
        return (
            f"  outputs: max |B-A| {report['max_abs_diff']:.4g}, "
            f"max relative {report['max_rel_diff']:.4g}"
        )
    shapes = [", ".join(report["outputs"][side]) for side in ("a", "b")]
    return f"  outputs: none alike to compare (A {shapes[0]}, B {shapes[1]}); labels only"


def _refused_lines(refused: dict[str, int] | None) -> list[str]:
    """Rows a version refused (a node failed on their values), by which: a row only one version
    answers is a difference of its own, left out of agreement and metrics."""
    if not refused or not any(refused.values()):
        return []
    return [
        f"  refused by a version, not compared: {refused['a']} by A only, {refused['b']} by B only, "
        f"{refused['both']} by both"
    ]


def _metric_lines(report: dict[str, Any], label_given: bool) -> list[str]:
    found: dict[str, Any] | None = report.get("metrics")
    if not found and report.get("metrics_unavailable"):
        return [f"  metrics: none ({report['metrics_unavailable']})"]
    if not found:
        shown = "" if label_given else ": --label names the column"
        return [f"  metrics: none (no labelled rows{shown})"]
    which = "" if label_given else ", by default"
    lines = [f"  metrics on {found['rows']} labelled rows (column {found['label']!r}{which}):"]
    if found.get("values"):
        lines[0] = lines[0][:-1] + (
            f", {len(found['values'])} values a row; R² the mean of each value's):"
        )
    for key, delta in found["delta"].items():
        a, b = found["a"][key], found["b"][key]
        shown = "n/a" if delta is None else f"{delta:+.4g}"
        lines.append(
            f"    {metric_name(key):9} A {metric_value(a)}  B {metric_value(b)}  B-A {shown}"
        )
    for each in found.get("values") or []:  # a forecast's horizons, one line each
        shown = "  ".join(
            f"{metric_name(key)} A {metric_value(each['a'][key])} B {metric_value(each['b'][key])}"
            for key in each["delta"]
        )
        lines.append(f"    value {each['value']}: {shown}")
    unknown = found.get("unknown_labels") or {}
    if unknown:
        counts = ", ".join(f"{label!r}: {rows}" for label, rows in list(unknown.items())[:5])
        lines.append(
            f"  {sum(unknown.values())} of {found['rows']} labelled rows hold a class neither "
            f"version was trained on ({counts}{', ...' if len(unknown) > 5 else ''}): each is "
            "an error for both; retrain with it to predict it"
        )
    return lines


def names_a_key(text: str) -> bool:
    """Whether `text` can be a store key at all (an invalid one is refused by the store)."""
    return bool(text) and not text.startswith("/") and "\\" not in text
