"""What `aiaas versions` says of each version beside its name: the test metrics to rank by and
the training settings that differ between the versions listed.

A data scientist iterating on one spec (hidden sizes, learning rate, epochs, seed, features)
publishes a version per run; the list showed accuracy alone, so runs with equal accuracy (and
an imbalanced set, where the macro F1 tells them apart) could only be told apart by opening
each manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from functions.runtime.manifest import ModelManifest
from functions.runtime.metric_text import metrics_text
from infra.cli.printable import printable

# The test metrics shown, in order: a classifier's accuracy and macro F1, a regressor's R2 and
# RMSE (MAE is one `aiaas show` away).
HEADLINE = ("accuracy", "f1", "r2", "rmse")


def headline(manifest: ModelManifest) -> str:
    """`accuracy=0.9565 macro_f1=0.9659`, from the test split (`aiaas train`), else the
    held-out rows `aiaas publish --data` scored, else the metrics as published."""
    metrics = manifest.metrics
    test = metrics.get("test", metrics.get("held_out", metrics))
    if not isinstance(test, dict):
        return ""
    return metrics_text(test, HEADLINE)


def varied_settings(manifests: Sequence[ModelManifest]) -> dict[str, str]:
    """Version -> `hidden=[64,64] learning_rate=0.001`: the settings whose value is not the
    same in every trained version listed; and over every version listed, `quantize=int8` /
    `fp16` / `-` where they differ (a source and its `publish --quantize` variants read alike
    otherwise: the same metrics, nothing to tell which to promote; a trained source and its
    published int8 variant were set apart, and one variant alone varies with nothing)."""
    trained = _varied({m.version: _settings(m) for m in manifests if m.training})
    quantized = _varied({m.version: {"quantize": _quantized(m)} for m in manifests})
    said = {m.version: (trained.get(m.version, ""), quantized[m.version]) for m in manifests}
    return {version: " ".join(filter(None, both)) for version, both in said.items()}


# The producer name onnxruntime's quantizers (quantize_dynamic, quantize_static's QDQ and
# QOperator formats) write into the file, where a user quantized it before publishing.
QUANTIZER_PRODUCER = "onnx.quantize"


def _quantized(manifest: ModelManifest) -> str:
    """`publish --quantize`'s method, else `int8` where `aiaas train`'s int8 gate kept it, or
    where onnxruntime's quantizer wrote the file itself (a user's own quantize_dynamic or QDQ
    file published beside its source read `-`, as the source did)."""
    record = _object(manifest.extras.get("quantization"))
    if "method" in record:
        return _compact(record["method"])
    if record.get("kept") is True:
        return "int8"
    return "int8" if manifest.file.producer.split(" ")[0] == QUANTIZER_PRODUCER else "-"


def _varied(settings: dict[str, dict[str, str]]) -> dict[str, str]:
    keys: list[str] = []
    for found in settings.values():
        keys += [key for key in found if key not in keys]
    varied = [k for k in keys if len({found.get(k, "-") for found in settings.values()}) > 1]
    return {
        version: " ".join(f"{k}={found.get(k, '-')}" for k in varied)
        for version, found in settings.items()
    }


def _settings(manifest: ModelManifest) -> dict[str, str]:
    # A manifest in a store another tool (or person) wrote: any field may be any JSON value.
    training = manifest.training
    recipe, dataset, export = (
        _object(training.get(key)) for key in ("recipe", "dataset", "export")
    )
    schedule = training.get("schedule")
    found: dict[str, Any] = {
        "data": dataset.get("path"),
        # the file read (`dataset.file_sha256`, 12 digits): one path holds this week's file
        # and last week's alike, and `data=` read the same for both
        "data_sha256": _digest(_object(manifest.dataset).get("file_sha256")),
        "target": dataset.get("target"),
        "features": _features(manifest),
        "recipe": recipe.get("name"),
        **_object(recipe.get("params")),
        **{
            key: training.get(key)
            for key in ("epochs", "batch_size", "learning_rate", "optimizer", "weight_decay")
        },
        "schedule": schedule.get("name") if isinstance(schedule, dict) else schedule,
        # the step schedule's own settings; "-" for the others, which read none
        **{
            key: _object(schedule).get(key) if _object(schedule).get("name") == "step" else None
            for key in ("step_size", "gamma")
        },
        **{
            key: training.get(key)
            for key in ("class_weight", "early_stopping", "seed", "validation_split", "test_split")
        },
        "int8": export.get("quantize"),
    }
    return {key: _compact(value) for key, value in found.items()}


def _features(manifest: ModelManifest) -> str:
    names = manifest.preprocessing.get("feature_names") or list(manifest.features)
    if not isinstance(names, list) or not names:
        return "-"
    shown = ",".join(str(n) for n in names[:2]) + (",..." if len(names) > 2 else "")
    return f"{len(names)}({printable(shown)})"


def _digest(value: object) -> str | None:
    return value[:12] if isinstance(value, str) and value else None


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _compact(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple | dict):
        return printable(str(value).replace(" ", ""))
    return printable(str(value))
