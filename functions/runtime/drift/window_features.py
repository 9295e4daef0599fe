"""A fixed-length sensor window's drifted values by the window's feature ([N, 50, 12] declared
with `publish --window-features`, or [N, 50, 6] by its shape): its drift is binned value by
value (`x_0` ... `x_599`, row-major), so one sensor shifted drifted as 50 names like `x_595,
x_163, x_331` that the reader had to divide by 12 to find the sensor. `aiaas monitor` (its
table, --json, --fail-on-drift, the PNG) and the drift job's log line group them here, named as
a window of any length names them (`feature_7`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from functions.runtime.drift.report import FeatureDrift
from functions.runtime.manifest import ModelManifest
from functions.runtime.window_axis import input_features_axis


def values(manifest: ModelManifest) -> re.Pattern[str]:
    """A fixed row's value as a baseline names it: the input's name and index (`X_595` for
    skl2onnx's `X`, as batch CSVs and explanations name it), or `x_595`, what baselines were
    named whatever the input's name before (still read)."""
    name = manifest.inputs[0].name if manifest.inputs else "x"
    return re.compile(rf"(?:x|{re.escape(name)})_(\d+)\Z")


def window_features(
    manifest: ModelManifest, report: Sequence[FeatureDrift]
) -> list[dict[str, Any]]:
    """Per feature of the window with a drifted value: how many of its steps drifted, of how
    many, and the largest PSI; the most drifted steps first. Empty for any other model, and for
    a baseline not binned value by value (a window of any length: `feature_7_mean` already)."""
    row, axis = fixed_window(manifest, [r.name for r in report])
    if axis is None:
        return []
    value = values(manifest)
    indexed = {int(m.group(1)): r for r in report if (m := value.match(r.name))}
    found: dict[int, list[FeatureDrift]] = {}
    for index, drift in indexed.items():
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


def fixed_window(manifest: ModelManifest, names: list[str]) -> tuple[tuple[int, ...], int | None]:
    """The fixed window's row and its features axis where `names` are its values binned one by
    one (`x_0` .. `x_599` of [50, 12]); else an axis of None."""
    axis = input_features_axis(manifest)
    row = manifest.inputs[0].shape[1:] if axis is not None else ()
    if axis is None or len(row) != 2 or min(row) < 1:
        return row, None
    value = values(manifest)
    if sum(1 for name in names if value.match(name)) != row[0] * row[1]:
        return row, None  # not this window's values (another baseline's names)
    return row, axis
