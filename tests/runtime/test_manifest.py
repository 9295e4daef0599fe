"""The artifact contract: typed manifest, JSON round-trip, strict errors that name the field."""

from __future__ import annotations

import copy
import dataclasses
import json
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

from functions.runtime.errors import ManifestError
from functions.runtime.manifest import (
    SCHEMA_VERSION,
    ModelFile,
    ModelManifest,
    Postprocessing,
    TensorSpec,
)
from tests import onnx_factory


def full_manifest() -> ModelManifest:
    return ModelManifest(
        name="iris",
        version="3",
        task="classification",
        inputs=(TensorSpec("x", "float32", (-1, 4), finite=True, description="features"),),
        outputs=(TensorSpec("logits", "float32", (-1, 3)),),
        file=ModelFile(sha256="ab" * 32, size=1234, opset=17, producer="pytorch 2.13.0"),
        created_at="2026-01-02T03:04:05Z",
        labels=("setosa", "versicolor", "virginica"),
        postprocessing=Postprocessing(scores_output="logits", activation="softmax"),
        preprocessing={"mean": [1.0, 2.0, 3.0, 4.0], "std": [1.0, 1.0, 1.0, 1.0]},
        metrics={"test": {"accuracy": 0.97}},
        training={"spec": "iris-mlp", "epochs": 20},
        dataset={"fingerprint": "cd" * 32, "rows": 150},
        max_batch_size=512,
        description="iris classifier",
        extras={"feature_stats": {"x": {"min": 0.1}}},
    )


def valid_dict() -> dict[str, Any]:
    return full_manifest().to_dict()


def assert_manifest_error(data: object, *fragments: str) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        ModelManifest.from_dict(data)
    assert caught.value.status == HTTPStatus.BAD_REQUEST
    for fragment in fragments:
        assert fragment in caught.value.message
    return caught.value


def test_json_round_trip_keeps_every_field() -> None:
    manifest = full_manifest()
    text = manifest.to_json()
    assert json.loads(text)["schema_version"] == SCHEMA_VERSION
    assert ModelManifest.from_json(text) == manifest
    assert ModelManifest.from_json(text.encode()) == manifest


def test_optional_fields_default_and_created_at_is_utc() -> None:
    minimal = ModelManifest(
        name="m",
        version="1",
        task="other",
        inputs=(TensorSpec("x", "int64", (2,)),),
        outputs=(TensorSpec("y", "string", (-1,)),),
        file=ModelFile(sha256="0" * 64, size=1, opset=17, producer="p"),
    )
    loaded = ModelManifest.from_json(minimal.to_json())
    assert loaded == minimal
    assert loaded.postprocessing is None and loaded.max_batch_size is None
    assert loaded.created_at.endswith("Z")
    assert loaded.input("x") == TensorSpec("x", "int64", (2,)) and loaded.input("nope") is None


def test_manifest_of_an_onnx_file_round_trips(tmp_path: Path) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    manifest = onnx_factory.manifest_for(path, "linear", "1", labels=("a", "b", "c"))
    assert manifest.inputs == (TensorSpec("x", "float32", (-1, 4), finite=True),)
    assert manifest.outputs == (TensorSpec("logits", "float32", (-1, 3)),)
    assert ModelManifest.from_json(manifest.to_json()) == manifest


@pytest.mark.parametrize("schema", [0, "1", None, True])
def test_unknown_schema_version_is_refused(schema: object) -> None:
    data = valid_dict() | {"schema_version": schema}
    assert_manifest_error(data, "'schema_version'", repr(schema), f"reads version {SCHEMA_VERSION}")


def _drop(data: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    target: Any = data
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    del target[last]


@pytest.mark.parametrize(
    ("field", "named"),
    [
        ("schema_version", "'schema_version'"),
        ("name", "'name'"),
        ("version", "'version'"),
        ("task", "'task'"),
        ("created_at", "'created_at'"),
        ("inputs", "'inputs'"),
        ("outputs", "'outputs'"),
        ("file", "'file'"),
        ("file.sha256", "'file.sha256'"),
        ("file.size", "'file.size'"),
        ("file.opset", "'file.opset'"),
        ("file.producer", "'file.producer'"),
        ("inputs.0.dtype", "'inputs[0].dtype'"),
        ("inputs.0.name", "'inputs[0].name'"),
        ("inputs.0.shape", "'inputs[0].shape'"),
        ("outputs.0.shape", "'outputs[0].shape'"),
        ("postprocessing.scores_output", "'postprocessing.scores_output'"),
    ],
)
def test_missing_required_field_is_named(field: str, named: str) -> None:
    data = copy.deepcopy(valid_dict())
    # Spec lists hold dicts; address them by index the way the error message does.
    _drop(data, field)
    assert_manifest_error(data, "missing required field", named)


@pytest.mark.parametrize(
    ("field", "value", "fragments"),
    [
        ("file", {"sha256": "XYZ", "size": 1, "opset": 1, "producer": "p"}, ["'file.sha256'"]),
        ("file", {"sha256": "a" * 64, "size": 0, "opset": 1, "producer": "p"}, ["'file.size'"]),
        (
            "file",
            {"sha256": "a" * 64, "size": True, "opset": 1, "producer": "p"},
            ["'file.size'", "int"],
        ),
        (
            "file",
            {"sha256": "a" * 64, "size": 9, "opset": 1, "producer": "p", "path": "../x.onnx"},
            ["'file.path'"],
        ),
        # Edited in the store: a name no file system takes was a 502 with a traceback.
        ("files", [{"path": "w\x00.bin", "size": 4, "sha256": "a" * 64}], ["'files[0].path'"]),
        ("files", [{"path": "a" * 256, "size": 4, "sha256": "a" * 64}], ["'files[0].path'"]),
        ("task", "clustering", ["'task'", "'clustering'", "classification"]),
        ("labels", ["a", 2], ["'labels'", "strings"]),
        ("labels", "a,b", ["'labels'", "list"]),
        ("max_batch_size", 0, ["'max_batch_size'", "positive"]),
        ("max_batch_size", "8", ["'max_batch_size'", "int"]),
        ("metrics", [1], ["'metrics'", "dict"]),
        ("inputs", [], ["'inputs'", "at least one"]),
        ("outputs", "logits", ["'outputs'", "list"]),
        ("name", "../etc", ["'../etc'", "model name"]),
        ("name", "Iris", ["'Iris'"]),
        ("version", "1/2", ["version", "'1/2'"]),
        ("postprocessing", {"scores_output": "probs"}, ["'postprocessing.scores_output'", "probs"]),
        (
            "postprocessing",
            {"scores_output": "logits", "activation": "tanh"},
            ["'postprocessing.activation'", "'tanh'"],
        ),
    ],
)
def test_wrong_field_values_are_named(field: str, value: object, fragments: list[str]) -> None:
    assert_manifest_error(valid_dict() | {field: value}, *fragments)


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ({"dtype": "complex64"}, ["'inputs[0].dtype'", "'complex64'", "float32"]),
        ({"shape": [-1, 0]}, ["'inputs[0].shape[1]'", "-1"]),
        ({"shape": [-2, 4]}, ["'inputs[0].shape[0]'"]),
        ({"shape": [-1, 4.0]}, ["'inputs[0].shape[1]'"]),
        ({"shape": "(-1, 4)"}, ["'inputs[0].shape'", "list"]),
        ({"finite": "yes"}, ["'inputs[0].finite'", "bool"]),
        ({"name": 7}, ["'inputs[0].name'", "str"]),
        ({"index_rows": 5}, ["'inputs[0].index_rows'", "on an integer input"]),
        ({"index_rows": -1, "dtype": "int64"}, ["'inputs[0].index_rows'", "0 or more"]),
    ],
)
def test_bad_tensor_spec_is_named(spec: dict[str, Any], fragments: list[str]) -> None:
    data = valid_dict()
    data["inputs"] = [data["inputs"][0] | spec]
    assert_manifest_error(data, *fragments)


def test_duplicate_tensor_names_and_non_object_entries_are_refused() -> None:
    data = valid_dict()
    data["inputs"] = [data["inputs"][0], data["inputs"][0]]
    assert_manifest_error(data, "'inputs'", "duplicate")
    data = valid_dict() | {"outputs": ["logits"]}
    assert_manifest_error(data, "'outputs[0]'", "object")
    assert_manifest_error([valid_dict()], "must be an object")


@pytest.mark.parametrize("text", ["", "{", "[1, 2", b"\xff\xfe"])
def test_invalid_json_is_a_manifest_error(text: str | bytes) -> None:
    with pytest.raises(ManifestError, match="not valid JSON") as caught:
        ModelManifest.from_json(text)
    assert caught.value.status == HTTPStatus.BAD_REQUEST


def test_nan_metrics_cannot_be_written() -> None:
    # JSON has no NaN; a manifest other tools cannot parse must not be written.
    manifest = ModelManifest.from_dict(valid_dict() | {"metrics": {"loss": float("nan")}})
    with pytest.raises(ValueError, match="JSON"):
        manifest.to_json()


def zipmap_manifest() -> ModelManifest:
    """What `aiaas publish` writes for skl2onnx's default export (a ZipMap output)."""
    return ModelManifest(
        name="wine",
        version="1",
        task="classification",
        inputs=(TensorSpec("X", "float32", (-1, 13), finite=True),),
        outputs=(
            TensorSpec("output_label", "int64", (-1,)),
            TensorSpec("output_probability", "float32", (-1, 3), map_keys=(0, 1, 2)),
        ),
        file=ModelFile(sha256="ab" * 32, size=1234, opset=17, producer="skl2onnx 1.20.0"),
        labels=("0", "1", "2"),
        postprocessing=Postprocessing("output_probability", "none", "output_label"),
    )


def test_zipmap_keys_and_label_output_round_trip() -> None:
    manifest = zipmap_manifest()
    data = json.loads(manifest.to_json())
    assert data["outputs"][1]["map_keys"] == [0, 1, 2]
    assert data["postprocessing"] == {
        "scores_output": "output_probability",
        "activation": "none",
        "label_output": "output_label",
    }
    assert ModelManifest.from_json(manifest.to_json()) == manifest
    strings = with_keys(manifest, ("class_0", "class_1", "class_2"))
    assert ModelManifest.from_json(strings.to_json()) == strings


def with_keys(manifest: ModelManifest, keys: tuple[str, ...]) -> ModelManifest:
    outputs = (manifest.outputs[0], dataclasses.replace(manifest.outputs[1], map_keys=keys))
    return dataclasses.replace(manifest, outputs=outputs)


def test_manifests_without_them_are_written_as_before() -> None:
    """Versions published before ZipMap support keep their exact JSON shape."""
    data = valid_dict()
    assert "map_keys" not in data["outputs"][0] and "map_keys" not in data["inputs"][0]
    assert "index_rows" not in data["inputs"][0]
    ids = TensorSpec("ids", "int64", (-1, -1), index_rows=20)
    assert ModelManifest.from_dict(
        data | {"inputs": [{"name": "ids", "dtype": "int64", "shape": [-1, -1], "index_rows": 20}]}
    ).inputs == (ids,)
    assert data["postprocessing"] == {"scores_output": "logits", "activation": "softmax"}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: d["outputs"][1].update(map_keys=[0, "1", 2]), "all integers or all strings"),
        (lambda d: d["outputs"][1].update(map_keys=[0, 0, 2]), "lists a key twice"),
        (lambda d: d["outputs"][1].update(map_keys=[True, False]), "all integers or all strings"),
        (
            lambda d: d["outputs"][0].update(map_keys=[0, 1]),
            "for float32 [N, classes] outputs only",
        ),
        (lambda d: d["inputs"][0].update(map_keys=[0, 1], shape=[-1, 2]), "only outputs may have"),
        (lambda d: d["postprocessing"].update(label_output="nope"), "names no output: 'nope'"),
        (lambda d: d["postprocessing"].update(label_output=3), "must be of type str"),
    ],
)
def test_bad_map_keys_and_label_output_are_named(change: Any, fragment: str) -> None:
    data = zipmap_manifest().to_dict()
    change(data)
    assert_manifest_error(data, fragment)


def _with_inputs(inputs: list[dict[str, Any]]) -> dict[str, Any]:
    return {**valid_dict(), "inputs": inputs}


def test_gaps_is_written_only_where_set_and_only_for_float_inputs() -> None:
    """`gaps` (a float input its graph imputes) rides on `finite` under schema version 1: a
    reader older than it ignores it and refuses a missing value, as before; a manifest without
    it reads as it did."""
    spec = {"name": "x", "dtype": "float32", "shape": [-1, 4], "finite": True}
    read = ModelManifest.from_dict(_with_inputs([{**spec, "gaps": True}]))
    assert read.inputs[0].finite and read.inputs[0].gaps
    assert read.to_dict()["schema_version"] == 1 and read.to_dict()["inputs"][0]["gaps"] is True
    plain = ModelManifest.from_dict(_with_inputs([spec]))
    assert not plain.inputs[0].gaps and "gaps" not in plain.to_dict()["inputs"][0]
    with pytest.raises(ManifestError, match=r"'inputs\[0\]\.gaps' is for float inputs only"):
        ModelManifest.from_dict(_with_inputs([{**spec, "dtype": "int64", "gaps": True}]))
