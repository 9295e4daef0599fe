"""Building the manifest for a trained model and publishing it (and its card) to the registry."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from math import prod
from pathlib import Path
from typing import Any

import torch

from functions.runtime.artifact_files import describe_files
from functions.runtime.errors import VersionExists
from functions.runtime.input_columns import FLAT_COLUMNS
from functions.runtime.introspect import read_signature
from functions.runtime.manifest import ModelManifest, Postprocessing, TensorSpec, check_features
from functions.runtime.publish_alias import point_alias_at_published
from functions.runtime.publishing import NUMBER_TRIES
from functions.runtime.registry import Registry
from functions.runtime.text_input import TEXT_FIELD
from training.export import signature_for
from training.prepare import PreparedData
from training.provenance import run_by, software
from training.spec import JobSpec
from training.table_prep import shown_names
from training.text import PAD_ID
from training.trainer import TrainResult


def training_record(spec: JobSpec, result: TrainResult) -> dict[str, Any]:
    """The validated spec plus how the run went: what the manifest's `training` holds."""
    settings = spec.to_dict()
    if spec.precision == "amp" and not result.device.amp:  # `device: auto` found no GPU
        settings["precision"] = "fp32"  # what ran, not `amp` (the job said so on stderr)
    return {
        **settings,
        "device": result.device.description,
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "kept_because": result.kept_because,
        "stopped_early": result.stopped_early,
        "monitor": result.monitor,
        "seconds_per_epoch": round(result.seconds_per_epoch, 4),
        "run_by": run_by(),
        "software": software(),
        "history": {
            "train_loss": [round(r.train_loss, 6) for r in result.history],
            "val_loss": [round(r.val_loss, 6) for r in result.history],
            f"val_{result.monitor}": [round(r.val_metric, 6) for r in result.history],
        },
    }


def _describe(data: PreparedData, feature_names: tuple[str, ...]) -> str:
    if data.vocabulary is not None:
        return (
            f"raw text (one string per row), or token ids from vocab.json right-padded with "
            f"{PAD_ID}; only the first {data.vocabulary.max_length} tokens are read"
        )
    if data.table is not None and data.table.per_column:
        return (
            "one raw column: text columns as strings (a category training never saw reads as "
            "none of them), numbers as float32; a missing number (null, NaN, an empty cell) is "
            "filled with the training median"
        )
    if data.table is not None and len(feature_names) <= 32:
        return (
            "raw features in this order: " + shown_names(feature_names) + "; a missing value "
            "(null, NaN) is filled with the column's training median"
        )
    if len(data.row_shape) == 1 and len(feature_names) == data.row_shape[0] <= 32:
        return "raw features in this order: " + shown_names(feature_names)
    return f"raw values, each row shaped {list(data.row_shape)}"


def preprocessing_for(
    data: PreparedData, feature_names: tuple[str, ...], generated: bool = False
) -> dict[str, Any]:
    """What a client must do before calling: tokenize text, or nothing (scaling is in-graph)."""
    if data.vocabulary is not None:
        # Raw text: the ids input it feeds, and the record / batch column it is read from.
        field = feature_names[0] if feature_names else TEXT_FIELD
        return data.vocabulary.preprocessing(signature_for(data).input_name, field)
    table: dict[str, Any] = {
        "standardization": "inside the model graph",
        "feature_names": list(feature_names),
    }
    if data.table is not None:  # filled and encoded inside the graph too
        table["columns"] = data.table.to_json()
    if not generated and len(data.row_shape) > 1 and len(feature_names) == prod(data.row_shape):
        # A table's columns reshaped (dataset.input_shape): no `features` (those name an
        # [N, F] input's columns), yet batch reads a CSV of them by these names, in this order
        # (row-major), as training read its own file (batch/csv_header.py).
        table[FLAT_COLUMNS] = list(feature_names)
    return table


def build_manifest(
    spec: JobSpec,
    version: str,
    data: PreparedData,
    model_path: Path,
    facts: Mapping[str, Any],
    *,
    part_checksums: bool = True,
) -> ModelManifest:
    """The manifest for `model_path`; `facts` holds metrics, training, parity and quantization.
    `part_checksums`: the store it goes to takes multipart CRC32s (read_signature)."""
    graph = read_signature(model_path, part_checksums=part_checksums)
    description = _describe(data, tuple(facts["feature_names"]))
    # A model that fills gaps takes them in every numeric column, not only those that had
    # gaps in training: a served row may miss any value, and the training median is the same
    # answer for each. Infinity is no gap: a row it makes NaN is refused as predict refuses one.
    finite = data.table is None
    # `missing=None`: training encodes an empty cell of a text column as the category "", and
    # "nan" (`df[col].astype(str)`'s NaN) as a category of its own. read_signature's guess for
    # skl2onnx exports (a "nan" category is where missing values go) served the empty cells
    # of such a column as "nan": another class for each (batch accuracy 0.67, the card's 0.99).
    # `strip`: a text column's categories were read less the blanks around them (datasets.py),
    # so the served model reads a string it is sent so too.
    inputs = tuple(
        dataclasses.replace(
            s,
            finite=finite and s.dtype.startswith("float"),
            description=description,
            missing=None,
            na_categories=(),
            strip=data.table is not None and s.dtype == "string",
        )
        for s in graph.inputs
    )
    outputs = tuple(_output(s, data) for s in graph.outputs)
    return ModelManifest(
        name=spec.name,
        version=version,
        task=spec.task,
        inputs=inputs,
        outputs=outputs,
        file=dataclasses.replace(graph.file, producer=f"pytorch {torch.__version__}"),
        labels=data.labels,
        features=_features(inputs, data, tuple(facts["feature_names"]), facts["generated_names"]),
        postprocessing=Postprocessing("logits", "softmax") if data.labels else None,
        preprocessing=preprocessing_for(
            data, tuple(facts["feature_names"]), facts["generated_names"]
        ),
        metrics=dict(facts["metrics"]),
        training=dict(facts["training"]),
        dataset=dict(data.summary),
        description=spec.description,
        extras={"parity": dict(facts["parity"]), "quantization": dict(facts["quantization"])},
    )


def _features(
    inputs: tuple[TensorSpec, ...], data: PreparedData, names: tuple[str, ...], generated: bool
) -> tuple[str, ...]:
    """Column names callers may send by name: a table's columns (whatever they are called),
    not the x0, x1, ... made up for an array's positions."""
    if data.vocabulary is not None or generated:
        return ()
    try:
        return check_features(names, inputs)
    except ValueError:
        return ()


def _output(spec: TensorSpec, data: PreparedData) -> TensorSpec:
    text = (
        "class scores (pre-softmax), one per label" if data.labels else "prediction in target units"
    )
    return dataclasses.replace(spec, description=text)


def publish(
    registry: Registry,
    manifest: ModelManifest,
    model_path: Path,
    extra_files: Mapping[str, Path],
    alias: str | None,
    *,
    numbered: bool = False,
    on_published: Callable[[], object] | None = None,
    reason: str | None = None,
) -> ModelManifest:
    """Publish the version (card and vocabulary beside it) and point `alias` at it; returns
    the manifest as published. A `numbered` version (not pinned by the user) that another run
    published while this one trained moves on to the next free number, as `aiaas publish`
    does: the card, which names the version, is written again. `on_published` is told once the
    version exists (its manifest's write answered), before the alias (the CLI then ignores
    stop signals, as publish does); `reason`: why the alias is set, kept in its history."""
    for attempt in range(1, NUMBER_TRIES + 1):
        try:
            manifest = registry.publish(
                manifest, model_path, extra_files=extra_files, on_written=on_published
            )
            break  # as stored: with this publish's publish_id
        except VersionExists:
            if not numbered or attempt == NUMBER_TRIES:
                raise
            manifest = _renumbered(
                manifest, registry.next_version(manifest.name), model_path, extra_files
            )
    if on_published is not None:
        on_published()
    if alias:
        point_alias_at_published(registry, manifest.name, alias, manifest.version, reason)
    return manifest


def _renumbered(
    manifest: ModelManifest, version: str, model_path: Path, extra_files: Mapping[str, Path]
) -> ModelManifest:
    card = extra_files.get("card/card.md")
    if card is not None:  # its title, `# name:version`, is the only place the files say it
        _, rest = card.read_text(encoding="utf-8").split("\n", 1)
        card.write_text(f"# {manifest.name}:{version}\n{rest}", encoding="utf-8")
    files = describe_files(model_path, extra_files)
    return dataclasses.replace(manifest, version=version, files=files)
