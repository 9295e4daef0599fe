"""`aiaas monitor`: drift of a model's served rows against its training baseline, over a window.

Reads the histograms the predict function flushed to `monitoring/` in the store (see
functions/runtime/drift/monitor.py), sums those of the window and prints PSI and Jensen-Shannon
distance per feature and for the predictions; draws PSI per feature over time to a PNG (by
default only where matplotlib is installed: a base install gets the table and a line saying so).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from functions.runtime.baseline_hint import FILES, sample_kind, shape_said, variant_note
from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline
from functions.runtime.drift.categories import free_text_note
from functions.runtime.drift.distance import DEFAULT_THRESHOLD
from functions.runtime.drift.fits import why_unfit
from functions.runtime.drift.report import (
    MIN_ROWS_PER_BIN,
    FeatureDrift,
    Window,
    compare,
    label_shares,
    needed_per_row,
    read_window,
    rows_needed,
    timeline,
    total,
)
from functions.runtime.drift.text import NO_UNKNOWN, TEXT_BASELINE_SOURCE, UNKNOWN
from functions.runtime.errors import AiaasError, BadRequest, NotFound
from functions.runtime.manifest import ModelManifest
from functions.runtime.refs import DEFAULT_RULE
from functions.runtime.registry import Registry, parse_ref
from functions.runtime.store import open_store
from functions.runtime.text_input import text_input
from functions.runtime.version_extras import read_version_file
from infra.cli.arg_types import above_zero, window
from infra.cli.monitor_figure import draw, drift_pyplot
from infra.cli.monitor_others import Elsewhere, answered_by, served_elsewhere
from infra.cli.monitor_period import DAY, Period, iso, moment, period
from infra.cli.monitor_routes import Route, routes
from infra.cli.monitor_window import (
    window_features,
    window_labels,
    window_line,
    window_names,
    window_psi,
)
from infra.cli.output_file import output_file
from infra.local.expiry import MONITORING_DAYS

STEPS = 24  # slices of the window in the PNG
NO_PNG = (
    "no drift PNG drawn: matplotlib is not installed (pip install 'aiaas[card]'; "
    "--no-png: the table only, without this line)"
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("monitor", help="drift of served data against the training baseline")
    p.add_argument("ref", help=f"NAME, NAME:VERSION or NAME@ALIAS; {DEFAULT_RULE}")
    p.add_argument(
        "--window", type=window, default="1h", help="how far back: 30m, 1h, 7d (default 1h)"
    )
    p.add_argument(
        "--until",
        type=moment,
        metavar="TIME",
        help="the window ends here, not now: a UTC date (YYYY-MM-DD, its whole day; today's: "
        "today so far) or time (2026-11-20T14:00, an offset taken), to look at a past period",
    )
    p.add_argument(
        "--threshold",
        type=above_zero(100),
        default=DEFAULT_THRESHOLD,
        help="PSI above this is drift (0.2)",
    )
    p.add_argument(
        "--png",
        type=Path,
        help="PNG of PSI per feature over time (by default NAME-VERSION-drift.png, drawn "
        "only where matplotlib is installed)",
    )
    p.add_argument("--no-png", action="store_true", help="print the table only")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the report as one JSON document (for scripts); no PNG unless --png",
    )
    p.add_argument(
        "--fail-on-drift",
        action="store_true",
        help="exit 1 when a feature or the predictions drifted (a cron or CI gate); a window "
        "of too few rows to judge is not a failure",
    )
    p.set_defaults(func=cmd_monitor)


def cmd_monitor(args: argparse.Namespace) -> int:
    span = period(args.window, args.until, time.time())  # a span it cannot read: before the work
    registry = Registry(open_store(args.store))
    ref = parse_ref(args.ref)
    judged, notes = routes(registry.resolve_split(ref))
    draws, undrawn = False, False  # undrawn: the default PNG without matplotlib: one line why
    if args.png is not None and not args.no_png:
        _pyplot()  # asked for: a missing extra is said at once, before the work
        draws = True
    elif not args.no_png and not args.json:  # a script's run drops no file it did not ask for
        try:  # not asked for: best-effort, the table is what the user came for
            _pyplot()
            draws = True
        except BadRequest:
            undrawn = True
    versions = {route.manifest.version for route in judged}
    span_read = (span.since, span.until, span.said)
    others = served_elsewhere(registry.store, ref, versions, span_read, _flags(args))
    docs: list[dict[str, Any]] = []
    refusals: list[BadRequest] = []
    for route in judged:
        if len(docs) > len(refusals) and not args.json:
            print()  # a blank line between the versions' tables
        try:
            docs.append(_judge(registry, route, args, span, (draws, undrawn), others))
        except BadRequest as exc:  # a version without a baseline: the other still judged
            refusals.append(exc)
            docs.append({"model": route.manifest.name, "version": route.manifest.version})
            docs[-1].update(share=route.share, not_judged=exc.message)
            notes.append(f"{route.heading} is not judged: {exc.message}")
    if len(refusals) == len(judged):  # not one version judged: the refusal, not a report
        raise refusals[0]
    notes += [other.note for other in others]
    if span.since < time.time() - MONITORING_DAYS * DAY:  # a hint, not a version not judged
        print(
            f"note: drift snapshots older than {MONITORING_DAYS} days may have expired (the "
            "default of `aiaas serve --monitoring-days` and the stack's MonitoringRetentionDays)",
            file=sys.stderr,
        )
    for note in notes:  # on stderr: --json's stdout stays one document
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        doc = {**docs[0], "canary": docs[1] if len(docs) > 1 else None, "not_judged": notes}
        print(json.dumps(doc, indent=2))
    drifted = [
        (route, _most_drifted(route.manifest, doc)) for route, doc in zip(judged, docs, strict=True)
    ]
    if len(judged) > 1:  # which version drifted, where the alias splits
        named = [f"{route.ref} ({few(names)})" for route, names in drifted if names]
        return _gate(args, ["; ".join(named)] if named else [], span.said)
    return _gate(args, drifted[0][1], span.said)


def _flags(args: argparse.Namespace) -> str:
    """The flags given that change a verdict, for the command that judges another version as
    this run judges: without --threshold it judged at 0.2 what the gate judged at 5, and
    without --fail-on-drift it exits 0 where the gate would have failed (review_rev10 2)."""
    flags = f"--window {args.window}" + (f" --until {args.until.typed}" if args.until else "")
    if args.threshold != DEFAULT_THRESHOLD:
        said = f"{args.threshold:g}"  # 0.125 as typed; 0.1234567 in full, not 0.123457
        flags += f" --threshold {said if float(said) == args.threshold else repr(args.threshold)}"
    return flags + (" --fail-on-drift" if args.fail_on_drift else "")


def _judge(
    registry: Registry, route: Route, args: argparse.Namespace, span: Period,
    drawing: tuple[bool, bool], others: list[Elsewhere],
) -> dict[str, Any]:  # fmt: skip
    """One version's report: printed as a table (unless --json), returned as --json's document;
    with no rows in the window, `others` (versions not judged) say where the rows went."""
    draws, undrawn = drawing
    manifest = route.manifest
    name, version = manifest.name, manifest.version
    png = route.png(None if args.png is None else Path(args.png)) if draws else None
    baseline = _baseline(registry, manifest)
    since, until = span.since, span.until
    docs = read_window(registry.store, name, version, since, until)
    window = total(baseline, docs)
    if not window.rows:
        _check_fits(manifest, baseline)
    report = compare(baseline, window, args.threshold) if window.rows else []
    doc = _document(manifest, args, baseline, window, report, since, until)
    doc["share"] = 1.0 if route.share is None else route.share
    doc["window_features"] = window_features(manifest, report)  # a fixed window's x_i by sensor
    # The PNG's title names a column left unwatched (free text), which it draws no row for.
    title = f"{name}:{version}" + "".join(
        f" (free text {c!r} unwatched)" for c in baseline.free_text
    )
    needs = needed_per_row(baseline)  # the PNG hatches a slice of fewer rows
    if args.json:
        if png is not None:
            ends, names, psi, served = timeline(baseline, docs, since, until, STEPS)
            names = window_labels(manifest, names)  # x_595 as feature_7 step 49
            with output_file(png) as written:
                draw(title, names, ends, psi, args.threshold, written, served, needs)
            doc["png"] = str(png)
        return doc
    snapshots = f"{window.snapshots} snapshot{'' if window.snapshots == 1 else 's'}"
    print(
        f"{route.heading}: {window.rows} rows served in {span.said} "
        f"({snapshots}) against {baseline.rows} training rows"
    )
    if not window.rows and others:  # the window's rows went to versions not judged here
        print(answered_by(name, version, span.said, others))
        return doc
    if not window.rows:
        print(
            "nothing to compare: no counts were written in the window. A predict function "
            "writes its counts once an interval (AIAAS_DRIFT_FLUSH_SECONDS, 60 s by default), "
            "dated when they were served: `aiaas serve` an interval after they were (and when "
            "it stops), a Lambda function at its next request after that, so rows of the last "
            "interval show later"
        )
        return doc
    if window.rows < rows_needed(baseline):
        print(
            f"too few rows to judge drift: {window.rows} served, {rows_needed(baseline)} needed "
            f"({MIN_ROWS_PER_BIN} a bin); the PSI below is sampling noise (try a longer --window)"
        )
    print("\n".join(table(report, args.threshold, window.rows)))
    if doc["window_features"]:
        print(window_line(manifest, doc["window_features"]))
    if UNKNOWN in baseline.constant:  # a zero PSI there says nothing: say why
        print(NO_UNKNOWN.format(ref=f"{name}:{version}"))
    if baseline.free_text:  # no row in the table: say why
        print(f"{name}:{version}: {free_text_note(baseline.free_text)}")
    shares = label_shares(baseline, window)
    if shares:  # what (prediction)'s PSI compares: the labels' shares, served and in training
        print("\n".join(share_table(shares)))
    if png is not None:
        ends, names, psi, served = timeline(baseline, docs, since, until, STEPS)
        names = window_labels(manifest, names)
        with output_file(png) as written:
            draw(title, names, ends, psi, args.threshold, written, served, needs)
        print(f"wrote {png}")
    elif undrawn:
        print(NO_PNG)
    return doc


def _baseline(registry: Registry, manifest: ModelManifest) -> DriftBaseline:
    """The version's drift baseline; BadRequest naming how to add one where it has none."""
    name, version = manifest.name, manifest.version
    try:
        # Checked against the manifest's sha256 where it lists it, as the model is.
        raw = read_version_file(registry.store, manifest, BASELINE_FILE)
    except NotFound:
        text = text_input(manifest)
        if text is not None:  # a file of texts, not of feature rows
            source = TEXT_BASELINE_SOURCE.format(ref=f"{name}:{version}", field=text.field)
            raise BadRequest(
                f"{name}:{version} has no drift baseline; a text model's {source}"
            ) from None
        said = {
            "images": "a sample of its training images",
            "inputs": f"a sample of its training inputs, shape {shape_said(manifest.inputs)}: "
            "images or sequences",
            "rows": "an array of its training inputs",
            "table": "its training data",
        }
        kind = sample_kind(manifest.inputs)
        data, variant = f"{FILES[kind]}` ({said[kind]})", variant_note(manifest)
        raise BadRequest(
            f"{name}:{version} has no drift baseline; add one with `aiaas baseline "
            f"{name}:{version} {data}, or train it with `aiaas train`{variant}"
        ) from None
    return DriftBaseline.from_json(raw)


def _document(
    manifest: ModelManifest,
    args: argparse.Namespace,
    baseline: DriftBaseline,
    window: Window,
    report: list[FeatureDrift],
    since: float,
    until: float,
) -> dict[str, Any]:
    """`--json`'s report: what the table and the share table say, and the window read."""
    features = [
        {
            "name": r.name,
            "psi": r.psi,
            "js": r.js,
            "nan": r.nan,
            "outside": r.out_of_range,
            "drifted": r.drifted,
            "judged": window.rows >= r.needed,
            "rows_needed": r.needed,
        }
        for r in sorted(report, key=lambda r: -r.psi)
    ]
    shares = label_shares(baseline, window) if window.rows else []
    return {
        "model": manifest.name,
        "version": manifest.version,
        "window": args.window,
        "since": iso(since),
        "until": iso(until),
        "rows": window.rows,
        "snapshots": window.snapshots,
        "training_rows": baseline.rows,
        "rows_needed": rows_needed(baseline),
        "enough_rows": bool(window.rows) and window.rows >= rows_needed(baseline),
        "threshold": args.threshold,
        "features": features,
        "drifted": [r.name for r in report if r.drifted],
        "free_text": list(baseline.free_text),  # string columns not watched (categories.py)
        "label_shares": [
            {"label": label, "training": expected, "served": live}
            for label, expected, live in shares
        ],
        "png": None,
    }


def _gate(args: argparse.Namespace, drifted: list[str], said: str) -> int:
    """--fail-on-drift: exit 1 (the error line naming what drifted) after the report; else 0."""
    if args.fail_on_drift and drifted:
        raise AiaasError(f"drift over PSI {args.threshold:g} in {said}: {few(drifted)}")
    return 0


def _check_fits(manifest: ModelManifest, baseline: DriftBaseline) -> None:
    """BadRequest when the predict function never counts rows against this baseline (one
    copied from another version): "no counts yet, wait" would be waited on forever."""
    why = why_unfit(manifest, baseline, text=text_input(manifest) is not None)
    if why is not None:
        ref = f"{manifest.name}:{manifest.version}"
        raise BadRequest(
            f"{ref} is not monitored: {why}, so its predict function counts no rows; a "
            "version's baseline is written once: publish the model again and `aiaas baseline` "
            "the new version with its training data"
        )


def table(report: list[FeatureDrift], threshold: float, rows: int | None = None) -> list[str]:
    """One line per feature (most drifted first), then the predictions; a feature the window's
    `rows` are too few to judge says so (a string column of many categories)."""
    width = max(12, *(len(r.name) for r in report))
    lines = [f"{'feature':{width}}  {'PSI':>8}  {'JS':>6}  {'NaN':>6}  {'outside':>7}  drift"]
    for r in sorted(report, key=lambda r: -r.psi):
        flag = f"DRIFT (PSI > {threshold:g})" if r.drifted else ""
        if rows is not None and rows < r.needed and rows >= min(f.needed for f in report):
            flag = f"not judged: {r.needed} rows needed"
        line = f"{r.name:{width}}  {r.psi:8.4f}  {r.js:6.4f}  {r.nan:6d}  {r.out_of_range:7d}"
        lines.append(f"{line}  {flag}".rstrip())
    lines.append(drifted_line(report))
    return lines


# A summary names at most this many drifted features: an image model's 3,072 pixels all
# drifted were named on one line of ~25 KB, under a table that already lists each (and so
# was --fail-on-drift's error line).
NAMED = 10


def few(names: list[str]) -> str:
    """`a, b, c`; past NAMED names, the first NAMED and how many more."""
    shown = ", ".join(names[:NAMED])
    return shown if len(names) <= NAMED else f"{shown} and {len(names) - NAMED} more"


def _most_drifted(manifest: ModelManifest, doc: dict[str, Any]) -> list[str]:
    """A report's drifted names, past NAMED the most drifted first (as `drifted_line`): the gate's
    error line named x_3 .. x_13 in feature order, the least drifted of 27, where x_19 was 8.28."""
    drifted, psi = doc.get("drifted", []), {f["name"]: f["psi"] for f in doc.get("features", [])}
    if doc.get("window_features"):  # a fixed window's x_i by sensor, as its table says
        drifted = window_names(manifest, doc["window_features"], drifted)
        psi |= window_psi(doc["window_features"])
    return drifted if len(drifted) <= NAMED else sorted(drifted, key=lambda n: -psi.get(n, 0.0))


def drifted_line(report: list[FeatureDrift]) -> str:
    """`2 of 5 drifted: petal_length, (prediction)`; past NAMED, the most drifted first."""
    drifted = [r for r in report if r.drifted]
    if len(drifted) > NAMED:
        drifted.sort(key=lambda r: -r.psi)
    said = f"{len(drifted)} of {len(report)} drifted"
    return said + (f": {few([r.name for r in drifted])}" if drifted else "")


def share_table(shares: list[tuple[str, float, float]]) -> list[str]:
    """A classifier's predicted labels: their share in training and served, and the change."""
    width = max(15, *(len(label) for label, _, _ in shares))
    lines = [f"{'predicted label':{width}}  {'training':>8}  {'served':>8}  {'points':>7}"]
    for label, expected, live in shares:
        change = f"{100 * (live - expected):+.1f}"
        lines.append(f"{label:{width}}  {expected:8.1%}  {live:8.1%}  {change:>7}")
    return lines


def _pyplot() -> Any:
    return drift_pyplot()
