"""One run of the drift job over the store: every version with histograms in the window is
compared with its training baseline and reported as one EMF document (CloudWatch alarms watch
`aiaas_drift_max_psi` per model: the largest PSI of its features and its predictions, as
`aiaas monitor` judges them; the per-feature values ride along as log fields, queryable in
Logs Insights, instead of a custom metric per feature)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline
from functions.runtime.drift.distance import DEFAULT_THRESHOLD
from functions.runtime.drift.report import (
    PREDICTION,
    FeatureDrift,
    Window,
    compare,
    read_window,
    rows_needed,
    total,
)
from functions.runtime.drift.snapshots import PREFIX
from functions.runtime.drift.window_features import window_features
from functions.runtime.errors import AiaasError, NotFound
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import ObjectStore
from functions.runtime.version_extras import read_version_file

log = logging.getLogger("aiaas.drift")

MAX_PSI = "aiaas_drift_max_psi"  # the largest PSI judged, (prediction)'s too: what alarms watch
DRIFTED = "aiaas_drift_features"  # features over the threshold
PREDICTION_PSI = "aiaas_drift_prediction_psi"
ROWS = "aiaas_drift_rows"
_METRICS = [
    {"Name": MAX_PSI, "Unit": "None"},
    {"Name": DRIFTED, "Unit": "Count"},
    {"Name": PREDICTION_PSI, "Unit": "None"},
    {"Name": ROWS, "Unit": "Count"},
]


@dataclass(frozen=True)
class DriftSettings:
    window_seconds: float = 3600.0
    threshold: float = DEFAULT_THRESHOLD
    namespace: str = "aiaas"


def monitored(store: ObjectStore) -> Iterator[tuple[str, str]]:
    """(model, version) of every version that ever flushed histograms."""
    for model in store.list_dirs(PREFIX):
        for version in store.list_dirs(f"{PREFIX}/{model}"):
            yield model, version


def run(store: ObjectStore, settings: DriftSettings, now: float) -> list[dict[str, object]]:
    """One EMF document per version that served rows in the window ending at `now`."""
    docs = []
    registry = Registry(store)
    for model, version in monitored(store):
        key = f"{version_prefix(model, version)}/{BASELINE_FILE}"
        try:
            # Checked against the manifest's sha256 where it lists it, as the model is: a
            # baseline changed in the store since publishing is said below, never compared.
            manifest = registry.manifest(model, version)
            baseline = DriftBaseline.from_json(read_version_file(store, manifest, BASELINE_FILE))
        except NotFound:
            continue  # histograms of a version (or baseline) gone since: nothing to compare with
        except (AiaasError, ValueError, KeyError, TypeError) as exc:
            # This version is not judged, named; the others are (one bad baseline silenced
            # every model's drift alarm).
            log.error("drift of %s:%s not computed: its baseline %s does not read (%s)",
                      model, version, key, exc)  # fmt: skip
            continue
        window = total(
            baseline, read_window(store, model, version, now - settings.window_seconds, now)
        )
        if window.rows:
            report = compare(baseline, window, settings.threshold)
            doc = _document(model, version, baseline, window, settings, now, report)
            docs.append(doc | _by_window_feature(store, model, version, report))
    return docs


def _document(
    model: str,
    version: str,
    baseline: DriftBaseline,
    window: Window,
    settings: DriftSettings,
    now: float,
    report: list[FeatureDrift],
) -> dict[str, object]:
    needed = rows_needed(baseline)
    # String columns of free text, which no PSI is computed for (categories.free_text).
    unwatched = {"free_text": list(baseline.free_text)} if baseline.free_text else {}
    if window.rows < needed:  # noise, not drift: rows only, so the alarm sees no PSI
        return _emf(model, version, settings, now, [_METRICS[-1]]) | {
            ROWS: window.rows,
            "too_few_rows": {"rows": window.rows, "needed": needed},
            **_fields(report, settings),
            **unwatched,
        }
    # A string column of many categories (or a classifier of many classes) needs more rows
    # than the window has: not judged yet. The predictions count as `aiaas monitor` counts
    # them: a label shift is drift (a free-text model's only watch), so the alarm sees it.
    judged = [r for r in report if window.rows >= r.needed]
    return _emf(model, version, settings, now, _METRICS) | {
        MAX_PSI: max((r.psi for r in judged), default=0.0),
        DRIFTED: sum(r.drifted for r in judged if r.name != PREDICTION),
        PREDICTION_PSI: next((r.psi for r in report if r.name == PREDICTION), 0.0),
        ROWS: window.rows,
        **_fields(report, settings),
        **unwatched,
    }


def _by_window_feature(
    store: ObjectStore, model: str, version: str, report: list[FeatureDrift]
) -> dict[str, object]:
    """`window_features` of a fixed-length sensor window (window_features.py), as `aiaas
    monitor --json` gives it: the log line named one shifted sensor of a [N, 50, 12] window
    only as `drifted: x_595, x_163, ...` (50 values for the reader to divide by 12). Nothing
    where no value drifted, or the version's manifest does not read (its drift is still said)."""
    if not any(r.drifted for r in report):
        return {}
    try:
        manifest = Registry(store).manifest(model, version)
    except (AiaasError, ValueError, KeyError, TypeError):
        return {}
    found = window_features(manifest, report)
    return {"window_features": found} if found else {}


def _emf(
    model: str, version: str, settings: DriftSettings, now: float, metrics: list[dict[str, str]]
) -> dict[str, object]:
    return {
        "_aws": {
            "Timestamp": int(now * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": settings.namespace,
                    "Dimensions": [["model"], ["model", "version"]],
                    "Metrics": metrics,
                }
            ],
        },
        "model": model,
        "version": version,
    }


def _fields(report: list[FeatureDrift], settings: DriftSettings) -> dict[str, object]:
    """The per-feature values, as log fields (Logs Insights), not metrics."""
    features = [r for r in report if r.name != PREDICTION]
    return {
        "window_seconds": settings.window_seconds,
        "threshold": settings.threshold,
        "drifted": [r.name for r in report if r.drifted],
        "psi": {r.name: round(r.psi, 6) for r in report},
        "js": {r.name: round(r.js, 6) for r in report},
        "nan": {r.name: r.nan for r in features if r.nan},
        "out_of_range": {r.name: r.out_of_range for r in features if r.out_of_range},
    }


def window_end(event: object, now: float, window_s: float) -> float:
    """When the window ends: the schedule's `time` (EventBridge's, for the hour it fires), so a
    run Lambda delays or retries reads the hour it was for, not one shifted by the delay (a gap,
    or rows counted twice across runs). An event with no time, or one from outside the last
    window (a golden or hand-made event), reads the window ending now."""
    stamp = event.get("time") if isinstance(event, dict) else None
    try:
        scheduled = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return now
    return scheduled if 0 <= now - scheduled <= window_s else now
