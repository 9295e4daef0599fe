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
    row, axis = _window(manifest, [r.name for r in report])
    if axis is None:
        return []
    values = {int(m.group(1)): r for r in report if (m := _VALUE.match(r.name))}
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


def window_labels(manifest: ModelManifest, names: tuple[str, ...]) -> tuple[str, ...]:
    """The PNG's rows of a fixed window's values as `feature_7 step 49` (x_595 of [50, 12]):
    its most drifted rows were drawn `x_595, x_163, ...`, where the table's line names the
    sensor. Any other model's names as they are."""
    row, axis = _window(manifest, list(names))
    if axis is None:
        return names
    labels = []
    for name in names:
        value = _VALUE.match(name)
        if value is None:
            labels.append(name)
            continue
        place = divmod(int(value.group(1)), row[1])
        labels.append(f"feature_{place[axis]} step {place[1 - axis]}")
    return tuple(labels)


def _window(manifest: ModelManifest, names: list[str]) -> tuple[tuple[int, ...], int | None]:
    """The fixed window's row and its features axis where `names` are its values binned one by
    one (`x_0` .. `x_599` of [50, 12]); else an axis of None."""
    axis = input_features_axis(manifest)
    row = manifest.inputs[0].shape[1:] if axis is not None else ()
    if axis is None or len(row) != 2 or min(row) < 1:
        return row, None
    if sum(1 for name in names if _VALUE.match(name)) != row[0] * row[1]:
        return row, None  # not this window's values (another baseline's names)
    return row, axis
