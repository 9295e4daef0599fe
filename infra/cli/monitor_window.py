"""`aiaas monitor` of a fixed-length sensor window ([N, 50, 12] declared with `publish
--window-features`, or [N, 50, 6] by its shape): its drift is binned value by value (`x_0` ...
`x_599`, row-major), so one sensor shifted drifted as 50 names like `x_595, x_163, x_331` that
the reader had to divide by 12 to find the sensor. The drifted values are grouped here by the
window's feature, named as a window of any length names it (`feature_7`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from functions.runtime.drift.report import FeatureDrift
from functions.runtime.manifest import ModelManifest
from functions.runtime.window_axis import input_features_axis

_VALUE = re.compile(r"x_(\d+)\Z")


def window_features(
    manifest: ModelManifest, report: Sequence[FeatureDrift]
) -> list[dict[str, Any]]:
    """Per feature of the window with a drifted value: how many of its steps drifted, of how
    many, and the largest PSI; the most drifted steps first. Empty for any other model, and for
    a baseline not binned value by value (a window of any length: `feature_7_mean` already)."""
    axis = input_features_axis(manifest)
    row = manifest.inputs[0].shape[1:] if axis is not None else ()
    if axis is None or len(row) != 2 or min(row) < 1:
        return []
    values = {int(m.group(1)): r for r in report if (m := _VALUE.match(r.name))}
    if len(values) != row[0] * row[1]:  # not this window's values (another baseline's names)
        return []
    found: dict[int, list[FeatureDrift]] = {}
    for index, drift in values.items():
        if drift.drifted:
            feature = (index // row[1], index % row[1])[axis]
            found.setdefault(feature, []).append(drift)
    steps = row[1 - axis]
    return sorted(
        (
            {
                "feature": f"feature_{feature}",
                "steps_drifted": len(drifts),
                "steps": steps,
                "max_psi": max(d.psi for d in drifts),
            }
            for feature, drifts in found.items()
        ),
        key=lambda f: (-f["steps_drifted"], -f["max_psi"]),
    )


def window_line(manifest: ModelManifest, features: list[dict[str, Any]]) -> str:
    """`by feature of the window [50, 12] (steps, features): feature_7 50 of 50 steps (PSI up
    to 2.82)`, under the table of its values."""
    row = list(manifest.inputs[0].shape[1:])
    sides = "(steps, features)" if input_features_axis(manifest) == 1 else "(features, steps)"
    said = ", ".join(
        f"{f['feature']} {f['steps_drifted']} of {f['steps']} steps (PSI up to {f['max_psi']:.2f})"
        for f in features
    )
    return f"by feature of the window {row} {sides}: {said}"


def window_names(features: list[dict[str, Any]], drifted: list[str]) -> list[str]:
    """--fail-on-drift's names for a fixed window: its drifted features (`feature_7 (50 of 50
    steps)`), then what else drifted (`(prediction)`), where the gate named `x_595, x_163,
    ... and 40 more`."""
    said = [f"{f['feature']} ({f['steps_drifted']} of {f['steps']} steps)" for f in features]
    return said + [name for name in drifted if not _VALUE.match(name)]
