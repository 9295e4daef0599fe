"""The artifact contract: `manifest.json`, written beside every `model.onnx`.

Training writes it, the registry stores it, the runtime trusts nothing else about a model.
Loading is strict: an unknown schema version, a missing field or a field of the wrong type
is a `ManifestError` that names the field (`inputs[0].dtype`, `file.sha256`, ...).
This module holds the typed manifest and its parsing; the field checks are in
`manifest_fields`, the version's other files (the `files` list) in `version_files`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from functions.runtime import manifest_fields, names
from functions.runtime.errors import InvalidName, ManifestError
from functions.runtime.manifest_fields import choice, get, index_rows, mapping, sha256
from functions.runtime.manifest_schema import SCHEMA_VERSION as SCHEMA_VERSION
from functions.runtime.manifest_schema import check_schema, schema_fields, stored_fields

# The files of a version live in their own module; importers have always found them here.
from functions.runtime.version_files import FILE_ROLES as FILE_ROLES
from functions.runtime.version_files import MANIFEST_FILE as MANIFEST_FILE
from functions.runtime.version_files import MODEL_FILE as MODEL_FILE
from functions.runtime.version_files import ArtifactFile as ArtifactFile
from functions.runtime.version_files import artifact_path as artifact_path
from functions.runtime.version_files import parse_files

# Element types the runtime accepts, spelled as numpy spells them ("string" is ONNX's tensor(string)).
DTYPES = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "string",
)  # fmt: skip
TASKS = ("classification", "regression", "embedding", "other")
# How `predictions` (label + score) are derived from a classifier's scores output.
SCORE_ACTIVATIONS = ("softmax", "sigmoid", "none")


def utc_now() -> str:
    """An ISO-8601 UTC timestamp with a `Z`, as stored in manifests and alias records."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class TensorSpec:
    """One named input or output: element type and shape, -1 for a dynamic dimension."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    # Reject NaN and +-inf in this input (float inputs only).
    finite: bool = False
    # Float inputs only, with `finite`: a missing value (null, an empty cell, NaN) is taken, as
    # the graph imputes it (publish reads a SimpleImputer); +-inf stays refused.
    gaps: bool = False
    description: str = ""
    # Outputs only: the graph gives one {class: probability} map per row (a ZipMap, as skl2onnx
    # exports by default); the runtime serves it as this float32 [N, len(map_keys)] tensor, one
    # column per key in this order. The keys are the graph's class values (int64 or string).
    map_keys: tuple[int, ...] | tuple[str, ...] = ()
    # Integer inputs only: the graph reads rows of a table this long with these values (an
    # nn.Embedding's Gather). ONNX's Gather reads a negative index from the table's end, where
    # torch refuses it, so values must be 0 to index_rows - 1; 0: not such an input.
    index_rows: int = 0
    # String inputs only: the category a missing value (JSON null, an empty CSV cell) is sent as,
    # read from the graph at publish: "nan" where skl2onnx exports a OneHotEncoder fit on NaN.
    missing: str | None = None
    # String inputs only: blanks around a value are no part of it, and are stripped before the
    # graph sees it (" Nice" is "Nice"): a model `aiaas train` fitted on a table's text columns,
    # whose categories were read so (a CSV written `70, Lyon`).
    strip: bool = False

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def sequence(self) -> bool:
        """A rank-2 input with a dynamic second axis: a row is a sequence of any length (token
        ids for an integer one, as a GRU or LSTM over an embedding reads them), not an image
        nor a fixed set of columns; refusals say what to send in those terms."""
        return self.rank == 2 and self.shape[1] == -1


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
        data["inputs"] = [_spec_dict(spec) for spec in self.inputs]
        data["outputs"] = [_spec_dict(spec) for spec in self.outputs]
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


def _spec_dict(spec: TensorSpec) -> dict[str, Any]:
    data = asdict(spec)
    data["shape"] = list(spec.shape)
    if spec.map_keys:
        data["map_keys"] = list(spec.map_keys)
    else:
        del data["map_keys"]  # tensors' specs stay as they were
    if not spec.index_rows:
        del data["index_rows"]
    for key, unset in (("missing", None), ("strip", False), ("gaps", False)):
        if data[key] == unset:
            del data[key]  # written only where set: older readers ignore them
    return data


# ---- strict parsing -------------------------------------------------------------------------


def _parse_map_keys(spec: Mapping[str, Any], where: str) -> tuple[int, ...] | tuple[str, ...]:
    keys = get(spec, "map_keys", list, where, [])
    if not keys:
        return ()
    path = f"{where}.map_keys"
    kind = str if isinstance(keys[0], str) else int
    if not all(isinstance(k, kind) and not isinstance(k, bool) for k in keys):
        raise ManifestError(f"manifest field '{path}' must be all integers or all strings")
    if len(set(keys)) != len(keys):
        raise ManifestError(f"manifest field '{path}' lists a key twice")
    if get(spec, "dtype", str, where) != "float32" or len(get(spec, "shape", list, where)) != 2:
        raise ManifestError(f"manifest field '{path}' is for float32 [N, classes] outputs only")
    return tuple(keys)


def _parse_spec(data: object, where: str) -> TensorSpec:
    spec = mapping(data, where)
    shape = get(spec, "shape", list, where)
    for i, dim in enumerate(shape):
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < -1 or dim == 0:
            raise ManifestError(
                f"manifest field '{where}.shape[{i}]' must be a positive int or -1 (dynamic)"
            )
    dtype = choice(get(spec, "dtype", str, where), DTYPES, f"{where}.dtype")
    missing, strip = manifest_fields.string_fields(spec, where, dtype)
    gaps = manifest_fields.float_gaps(spec, where, dtype)
    return TensorSpec(
        name=get(spec, "name", str, where),
        dtype=dtype,
        shape=tuple(shape),
        finite=get(spec, "finite", bool, where, False),
        description=get(spec, "description", str, where, ""),
        map_keys=_parse_map_keys(spec, where),
        index_rows=index_rows(spec, where),
        missing=missing,
        strip=strip,
        gaps=gaps,
    )


def _parse_specs(data: Mapping[str, Any], key: str) -> tuple[TensorSpec, ...]:
    items = get(data, key, list, "")
    if not items:
        raise ManifestError(f"manifest field '{key}' must list at least one tensor")
    specs = tuple(_parse_spec(item, f"{key}[{i}]") for i, item in enumerate(items))
    if len({spec.name for spec in specs}) != len(specs):
        raise ManifestError(f"manifest field '{key}' has duplicate tensor names")
    if key == "inputs" and any(spec.map_keys for spec in specs):
        raise ManifestError("manifest field 'inputs' has map_keys, which only outputs may have")
    return specs


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
    inputs = _parse_specs(data, "inputs")
    outputs = _parse_specs(data, "outputs")
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
