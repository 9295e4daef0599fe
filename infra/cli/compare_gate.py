"""`aiaas compare --max-drop METRIC=DROP`: the comparison as a CI quality gate.

A pipeline had to read the JSON report with jq to fail a build, and a gate on the accuracy
delta alone passed a candidate that answered NaN on a quarter of the holdout: the metrics are
over the rows both versions answered. So the gate also fails when B fails rows A answered.
The report is printed either way (a pipeline keeps it); a failed gate is exit 1.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

HIGHER_IS_BETTER = ("accuracy", "macro_f1", "r2")
LOWER_IS_BETTER = ("mae", "rmse")
ALSO_KNOWN_AS = {"f1": "macro_f1"}


def max_drop(text: str) -> tuple[str, float]:
    """An argparse type: `accuracy=0.02` is (metric, the most it may get worse by)."""
    metric, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"give METRIC=DROP, e.g. accuracy=0.02; got {text}")
    known = HIGHER_IS_BETTER + LOWER_IS_BETTER
    # The manifest, `show` and `versions --json` call the macro F1 `f1`; the report macro_f1.
    metric = ALSO_KNOWN_AS.get(metric, metric)
    if metric not in known:
        raise argparse.ArgumentTypeError(
            f"unknown metric {metric!r}: give one of {', '.join(known)}"
        )
    try:
        drop = float(value)
    except ValueError:
        drop = math.nan
    if not 0 <= drop < math.inf:
        raise argparse.ArgumentTypeError(f"give a drop of 0 or more for {metric}; got {value!r}")
    return metric, drop


def gate_failures(report: dict[str, Any], drops: list[tuple[str, float]]) -> list[str]:
    """Why B fails the gate (none: it passes)."""
    a, b = report["a"], report["b"]
    failures = []
    refused = (report["rows"].get("refused") or {}).get("b", 0)
    if refused:
        failures.append(
            f"{b} (B) failed {refused} of the rows {a} (A) answered (a NaN or infinite answer, "
            "or a value a node refused: `errors` lists them), left out of the metrics"
        )
    found = report.get("metrics")
    for metric, limit in drops:
        if not found and report.get("metrics_unavailable"):
            failures.append(f"no {metric} to judge: {report['metrics_unavailable']}")
        elif not found:
            failures.append(
                f"the file has no labelled rows to judge {metric} on (--label names the column)"
            )
        elif metric not in found["delta"]:
            failures.append(
                f"the report has no {metric} (its metrics: {', '.join(found['delta'])})"
            )
        else:
            failures.extend(_worse(metric, found["a"][metric], found["b"][metric], limit))
    return failures


def _worse(metric: str, a: float | None, b: float | None, limit: float) -> list[str]:
    if a is None or b is None:
        return [f"{metric} could not be computed for both versions (A {a}, B {b})"]
    drop = a - b if metric in HIGHER_IS_BETTER else b - a
    if drop <= limit + 1e-12:  # a limit met exactly passes, whatever float rounding says
        return []
    verb = "dropped" if metric in HIGHER_IS_BETTER else "rose"
    return [
        f"{metric} {verb} by {drop:.4g} ({a:.4g} -> {b:.4g}), more than --max-drop {metric}={limit:g}"
    ]
