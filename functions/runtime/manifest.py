"""The artifact contract: `manifest.json`, written beside every `model.onnx`.

Training writes it, the registry stores it, the runtime trusts nothing else about a model.
Loading is strict: an unknown schema version, a missing field or a field of the wrong type
is a `ManifestError` that names the field (`inputs[0].dtype`, `file.sha256`, ...).
This module holds the typed manifest and its parsing; the field checks are in
`manifest_fields`, the version's other files (the `files` list) in `version_files`, each
tensor's spec (`TensorSpec`) in `tensor_spec`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from functions.runtime import manifest_fields, names
from functions.runtime.errors import InvalidName, ManifestError
from functions.runtime.manifest_fields import choice, get, mapping, sha256
from functions.runtime.manifest_schema import SCHEMA_VERSION as SCHEMA_VERSION
from functions.runtime.manifest_schema import check_schema, schema_fields, stored_fields

# A tensor's spec too (tensor_spec.py): importers find it here, beside the manifest that lists it.
from functions.runtime.tensor_spec import DTYPES as DTYPES
from functions.runtime.tensor_spec import TensorSpec as TensorSpec
from functions.runtime.tensor_spec import parse_specs, spec_dict

# The files of a version live in their own module; importers have always found them here.
from functions.runtime.version_files import FILE_ROLES as FILE_ROLES
from functions.runtime.version_files import MANIFEST_FILE as MANIFEST_FILE
from functions.runtime.version_files import MODEL_FILE as MODEL_FILE
from functions.runtime.version_files import ArtifactFile as ArtifactFile
from functions.runtime.version_files import artifact_path as artifact_path
from functions.runtime.version_files import parse_files

TASKS = ("classification", "regression", "embedding", "other")
# How `predictions` (label + score) are derived from a classifier's scores output.
SCORE_ACTIVATIONS = ("softmax", "sigmoid", "none")


def utc_now() -> str:
    """An ISO-8601 UTC timestamp with a `Z`, as stored in manifests and alias records."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ModelFile:
    """The ONNX file a manifest vouches for."""

    sha256: str
    size: int
    opset: int
    producer: str
    path: str = MODEL_FILE


@dataclass(frozen=True)
class Postprocessing:
    """For classifiers: which output holds the class scores and how to turn them into scores."""

    scores_output: str
    # "none" when the output already holds probabilities (skl2onnx and other classical exporters).
    activation: str = "softmax"
    # The model's own per-row class output (int64 or string), when it has one: batch writes the
    # classifier's `label` instead of repeating it.
    label_output: str | None = None
    # True when that output answers the index of the class, not the class: onnxruntime's
    # two-class TreeEnsembleClassifier whose leaves score both classes (CatBoost's export) says
    # 0/1 for integer classes such as 3/7 or -1/1. Publish's probe finds it; it is served mapped
    # to the classes, as the model's own predict() answers.
    label_indexes: bool = False


@dataclass(frozen=True)
class ModelManifest:
    """Everything the registry and the runtime know about one immutable model version."""

    name: str
    version: str
    task: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    file: ModelFile
    created_at: str = field(default_factory=utc_now)
    labels: tuple[str, ...] = ()
    # Column names of the one [-1, F] input, in order: records and CSV/JSONL columns by name.
    features: tuple[str, ...] = ()
    postprocessing: Postprocessing | None = None
    preprocessing: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    max_batch_size: int | None = None
    description: str = ""
    extras: dict[str, Any] = field(default_factory=dict)
    # Every other file of the version (external data, tokenizer, card, ...); empty in manifests
    # written before versions listed their files.
    files: tuple[ArtifactFile, ...] = ()
    # Drawn by each publish (`publishing.publish_version`), so two publishes of one file in one
    # second write different manifests; empty in those written before (older readers skip it).
    publish_id: str = ""
    stored_schema: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def weight_files(self) -> tuple[ArtifactFile, ...]:
        """The external data files the model loads, besides the model file itself."""
        return tuple(f for f in self.files if f.role == "weights")

    @property
    def weight_bytes(self) -> int:
        """What loading the model reads: the model file and its external data."""
        return self.file.size + sum(f.size for f in self.weight_files)

    def input(self, name: str) -> TensorSpec | None:
        return next((spec for spec in self.inputs if spec.name == name), None)

    @property
    def feature_input(self) -> TensorSpec | None:
        """The input that `features` name the columns of, if the model has feature names."""
        return self.inputs[0] if self.features else None

    def to_dict(self, *, as_stored: bool = False) -> dict[str, Any]:
        """As written (`schema_fields`: today's rule), or `as_stored` in the store, to show."""
        data = {key: value for key, value in asdict(self).items() if key != "stored_schema"}
        data["inputs"] = [spec_dict(spec) for spec in self.inputs]
        data["outputs"] = [spec_dict(spec) for spec in self.outputs]
        data["labels"] = list(self.labels)
        data["features"] = list(self.features)
        if self.postprocessing is not None and self.postprocessing.label_output is None:
            del data["postprocessing"]["label_output"]  # manifests without one stay as they were
        if self.postprocessing is not None and not self.postprocessing.label_indexes:
            del data["postprocessing"]["label_indexes"]
        for empty in ("files", "publish_id"):  # manifests without them stay as they were
            if not data[empty]:
                del data[empty]
        return data | schema_fields(self, as_stored=as_stored)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    @classmethod
    def from_json(
        cls, text: str | bytes, stored_as: tuple[str, str] | None = None
    ) -> ModelManifest:
        """The manifest in `text`; with `stored_as` (name, version), refused unless it is theirs."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ManifestError(f"manifest is not valid JSON: {exc}") from exc
        found = cls.from_dict(data)
        # A version folder copied by hand to another model answered as the other model.
        if stored_as is not None and (found.name, found.version) != stored_as:
            raise ManifestError(
                f"it describes {found.name}:{found.version}, not the version stored there "
                "(a version's folder copied by hand?): publish the model file instead"
            )
        return found

    @classmethod
    def from_dict(cls, data: object) -> ModelManifest:
        return _parse_manifest(mapping(data, "manifest"))


# ---- strict parsing -------------------------------------------------------------------------


def _parse_features(data: Mapping[str, Any], inputs: tuple[TensorSpec, ...]) -> tuple[str, ...]:
    if "features" not in data:
        # Versions published before `features` existed kept the names in preprocessing.
        legacy = data.get("preprocessing", {})
        names = legacy.get("feature_names") if isinstance(legacy, Mapping) else None
        try:
            return check_features(tuple(names), inputs) if isinstance(names, list) else ()
        except ValueError:
            return ()
    features = get(data, "features", list, "", [])
    if not all(isinstance(name, str) for name in features):
        raise ManifestError("manifest field 'features' must be a list of strings")
    try:
        return check_features(tuple(features), inputs)
    except ValueError as exc:
        raise ManifestError(f"manifest field 'features': {exc}") from None


def check_features(features: tuple[str, ...], inputs: tuple[TensorSpec, ...]) -> tuple[str, ...]:
    """`features` if they can name the columns of the model's one [-1, F] input; else ValueError."""
    if not features:
        return ()
    if any(not name.strip() for name in features):
        raise ValueError("a feature name is empty")
    twice = manifest_fields.repeated(features)
    if twice is not None:
        raise ValueError(f"feature names must be unique; {twice!r} appears twice")
    if len(inputs) != 1 or inputs[0].rank != 2 or inputs[0].dtype == "string":
        shapes = {spec.name: list(spec.shape) for spec in inputs}
        raise ValueError(
            f"feature names need a model with one numeric input of shape [N, F]; it has {shapes}"
        )
    width = inputs[0].shape[1]
    if width not in (-1, len(features)):
        raise ValueError(
            f"{len(features)} feature names for input '{inputs[0].name}' of {width} columns"
        )
    return features


def _parse_file(data: object) -> ModelFile:
    where = "file"
    spec = mapping(data, where)
    sha = sha256(get(spec, "sha256", str, where), "file.sha256")
    size = get(spec, "size", int, where)
    if size <= 0:
        raise ManifestError("manifest field 'file.size' must be positive")
    path = get(spec, "path", str, where, MODEL_FILE)
    if path != MODEL_FILE:
        raise ManifestError(f"manifest field 'file.path' must be {MODEL_FILE!r}")
    return ModelFile(
        sha256=sha,
        size=size,
        opset=get(spec, "opset", int, where),
        producer=get(spec, "producer", str, where),
        path=path,
    )


def _parse_postprocessing(
    data: Mapping[str, Any], outputs: tuple[TensorSpec, ...]
) -> Postprocessing | None:
    raw = data.get("postprocessing")
    if raw is None:
        return None
    where = "postprocessing"
    post = mapping(raw, where)
    scores = get(post, "scores_output", str, where)
    if scores not in {spec.name for spec in outputs}:
        raise ManifestError(
            f"manifest field 'postprocessing.scores_output' names no output: {scores!r}"
        )
    activation = choice(
        get(post, "activation", str, where, "softmax"), SCORE_ACTIVATIONS, f"{where}.activation"
    )
    label = get(post, "label_output", str, where, None)
    if label is not None and label not in {spec.name for spec in outputs}:
        raise ManifestError(
            f"manifest field 'postprocessing.label_output' names no output: {label!r}"
        )
    indexes = get(post, "label_indexes", bool, where, False)
    if indexes and label is None:
        raise ManifestError("manifest field 'postprocessing.label_indexes' needs a label_output")
    return Postprocessing(scores, activation, label, indexes)


def _parse_manifest(data: Mapping[str, Any]) -> ModelManifest:
    check_schema(data)
    inputs = parse_specs(data, "inputs")
    outputs = parse_specs(data, "outputs")
    labels = get(data, "labels", list, "", [])
    if not all(isinstance(label, str) for label in labels):
        raise ManifestError("manifest field 'labels' must be a list of strings")
    max_batch = get(data, "max_batch_size", int, "", None)
    if max_batch is not None and max_batch <= 0:
        raise ManifestError("manifest field 'max_batch_size' must be positive")
    try:
        name = names.model_name(get(data, "name", str, ""))
        version = names.version_name(get(data, "version", str, ""))
    except InvalidName as exc:
        raise ManifestError(f"manifest field {exc.message}") from exc
    return ModelManifest(
        name=name,
        version=version,
        created_at=get(data, "created_at", str, ""),
        task=choice(get(data, "task", str, ""), TASKS, "task"),
        inputs=inputs,
        outputs=outputs,
        file=_parse_file(get(data, "file", dict, "")),
        labels=tuple(labels),
        features=_parse_features(data, inputs),
        postprocessing=_parse_postprocessing(data, outputs),
        preprocessing=dict(get(data, "preprocessing", dict, "", {})),
        metrics=dict(get(data, "metrics", dict, "", {})),
        training=dict(get(data, "training", dict, "", {})),
        dataset=dict(get(data, "dataset", dict, "", {})),
        max_batch_size=max_batch,
        description=get(data, "description", str, "", ""),
        extras=dict(get(data, "extras", dict, "", {})),
        files=parse_files(get(data, "files", list, "", [])),
        publish_id=get(data, "publish_id", str, "", ""),
        stored_schema=stored_fields(data),
    )
