"""`aiaas monitor`'s words for a fixed-length sensor window's drift ([N, 50, 12] declared with
`publish --window-features`): the line under its table, --fail-on-drift's names and the PNG's
labels, from its values grouped by feature (functions/runtime/drift/window_features.py, which
the drift job's log line reads too)."""

from __future__ import annotations

from typing import Any

from functions.runtime.drift.window_features import fixed_window, values
from functions.runtime.drift.window_features import window_features as window_features
from functions.runtime.manifest import ModelManifest
from functions.runtime.window_axis import input_features_axis


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


def window_names(
    manifest: ModelManifest, features: list[dict[str, Any]], drifted: list[str]
) -> list[str]:
    """--fail-on-drift's names for a fixed window: its drifted features (`feature_7 (50 of 50
    steps)`), then what else drifted (`(prediction)`), where the gate named `x_595, x_163,
    ... and 40 more`."""
    value = values(manifest)
    return [*window_psi(features), *(name for name in drifted if not value.match(name))]


def window_psi(features: list[dict[str, Any]]) -> dict[str, float]:
    """`window_names`' names of the window's features, each with its largest PSI: the gate
    sorts more than 10 names by PSI, and these (in no PSI table) went after `(prediction)`."""
    return {
        f"{f['feature']} ({f['steps_drifted']} of {f['steps']} steps)": f["max_psi"]
        for f in features
    }


def window_labels(manifest: ModelManifest, names: tuple[str, ...]) -> tuple[str, ...]:
    """The PNG's rows of a fixed window's values as `feature_7 step 49` (x_595 of [50, 12]):
    its most drifted rows were drawn `x_595, x_163, ...`, where the table's line names the
    sensor. Any other model's names as they are."""
    row, axis = fixed_window(manifest, list(names))
    if axis is None:
        return names
    labels, pattern = [], values(manifest)
    for name in names:
        value = pattern.match(name)
        if value is None:
            labels.append(name)
            continue
        place = divmod(int(value.group(1)), row[1])
        labels.append(f"feature_{place[axis]} step {place[1 - axis]}")
    return tuple(labels)
