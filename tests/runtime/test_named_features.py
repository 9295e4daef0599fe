"""Feature names end to end: the manifest keeps them; records, columns and CSV/JSONL by name."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.batch.layout import input_key
from functions.runtime.codecs import oip, simple
from functions.runtime.errors import InvalidInput
from functions.runtime.manifest import ModelManifest, check_features
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import batch_support, onnx_factory

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)


@pytest.fixture
def manifest(tmp_path: Path) -> ModelManifest:
    path = onnx_factory.linear_classifier(tmp_path / "iris.onnx")
    base = onnx_factory.manifest_for(path, "iris", "1", labels=("a", "b", "c"))
    return dataclasses.replace(base, features=FEATURES)


def test_manifest_round_trips_features_and_reads_legacy_preprocessing(
    manifest: ModelManifest,
) -> None:
    assert ModelManifest.from_json(manifest.to_json()).features == FEATURES
    legacy = manifest.to_dict()
    del legacy["features"]
    legacy["preprocessing"] = {"feature_names": list(FEATURES)}
    assert ModelManifest.from_dict(legacy).features == FEATURES
    legacy["preprocessing"] = {"feature_names": ["only", "three", "names"]}
    assert ModelManifest.from_dict(legacy).features == ()  # old and unusable: ignored


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (("a", "b", "c"), "3 feature names for input 'x' of 4 columns"),
        (("a", "b", "a", "c"), "'a' appears twice"),
        (("a", "", "b", "c"), "a feature name is empty"),
    ],
)
def test_feature_names_that_cannot_fit_the_input_are_refused(
    manifest: ModelManifest, features: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        check_features(features, manifest.inputs)
    data = manifest.to_dict() | {"features": list(features)}
    with pytest.raises(Exception, match=message):
        ModelManifest.from_dict(data)


def test_records_are_read_in_the_manifests_feature_order(manifest: ModelManifest) -> None:
    records = [
        {"id": 7, **dict(reversed(list(zip(FEATURES, row, strict=True))))} for row in ROWS.tolist()
    ]
    decoded = simple.decode({"instances": records}, manifest)
    np.testing.assert_allclose(decoded["x"], ROWS)
    columns = {name: ROWS[:, i].tolist() for i, name in enumerate(FEATURES)}
    np.testing.assert_allclose(simple.decode({"inputs": columns}, manifest)["x"], ROWS)
    # The input's own name keeps working beside the feature names.
    np.testing.assert_allclose(simple.decode({"inputs": {"x": ROWS.tolist()}}, manifest)["x"], ROWS)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"instances": [{"sepal_length": 1, "sepal_width": 2, "petal_length": 3}]},
            "instances[0] is missing feature 'petal_width'; this model reads sepal_length, "
            "sepal_width, petal_length, petal_width",
        ),
        (  # the field sent for it named: it said only that petal_width was missing
            {
                "instances": [
                    {"sepal_length": 1, "sepal_width": 2, "petal_length": 3, "petal_widht": 4}
                ]
            },
            "instances[0] is missing feature 'petal_width' ('petal_widht', which it has, is no "
            "feature: a misspelling?); this model reads sepal_length, sepal_width, "
            "petal_length, petal_width",
        ),
        (
            {"instances": [dict.fromkeys(FEATURES, 1.0) | {"petal_width": "wide"}]},
            "instances[0].petal_width must be a number (float32); got 'wide'",
        ),
        (
            {"inputs": {name: [1.0, 2.0] for name in FEATURES} | {"petal_width": [1.0]}},
            "one list per feature, all as long",
        ),
        ({"inputs": {"sepal_length": [1.0]}}, "missing feature 'sepal_width'"),
    ],
)
def test_bad_records_name_the_feature(
    manifest: ModelManifest, body: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        simple.decode(body, manifest)
    assert message in caught.value.message


def test_metadata_lists_task_labels_and_features(manifest: ModelManifest) -> None:
    params = oip.model_metadata(manifest, ["1"])["parameters"]
    assert params == {
        "version": "1",
        "task": "classification",
        "labels": ["a", "b", "c"],
        "features": list(FEATURES),
    }


def _publish(tmp_path: Path, manifest: ModelManifest) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    Registry(store).publish(manifest, tmp_path / "iris.onnx")
    return store


def test_the_training_csv_itself_is_batch_scored_by_column_name(
    tmp_path: Path, manifest: ModelManifest
) -> None:
    store = _publish(tmp_path, manifest)
    # The training file as it is: columns in another order, an id and the target beside them.
    text = "id,petal_width,species,sepal_length,petal_length,sepal_width\n" + "".join(
        f"{i},{r[3]},name{i},{r[0]},{r[2]},{r[1]}\n" for i, r in enumerate(ROWS.tolist())
    )
    key = input_key("iris", "train.csv")
    store.put_bytes(key, text.encode())
    summary = batch_support.run(store, tmp_path, key)
    assert (summary["scored_rows"], summary["failed_rows"]) == (2, 0), summary
    out = batch_support.read_csv(store, summary["output"])
    assert [row["id"] for row in out] == ["0", "1"]
    assert [row["species"] for row in out] == ["name0", "name1"]
    want = simple.encode(manifest, {"logits": _logits(tmp_path, ROWS)})["predictions"]
    assert [row["pred_label"] for row in out] == [p["label"] for p in want]


def test_jsonl_records_by_feature_name_and_a_missing_one_is_a_bad_row(
    tmp_path: Path, manifest: ModelManifest
) -> None:
    store = _publish(tmp_path, manifest)
    lines = [
        json.dumps({"id": i, **dict(zip(FEATURES, r, strict=True))})
        for i, r in enumerate(ROWS.tolist())
    ]
    lines.append(json.dumps({"id": 9, "sepal_length": 1.0}))
    key = input_key("iris", "rows.jsonl")
    store.put_bytes(key, ("\n".join(lines) + "\n").encode())
    summary = batch_support.run(store, tmp_path, key)
    assert (summary["scored_rows"], summary["failed_rows"]) == (2, 1), summary
    assert batch_support.read_jsonl(store, summary["errors"]) == [
        {"line": 3, "error": "missing feature 'sepal_width' (or input 'x')"}
    ]
    out = batch_support.read_jsonl(store, summary["output"])
    want = simple.encode(manifest, {"logits": _logits(tmp_path, ROWS)})["predictions"]
    assert [row["id"] for row in out] == [0, 1]
    assert [row["pred_label"] for row in out] == [p["label"] for p in want]


def test_csv_without_the_features_names_them_in_the_error(
    tmp_path: Path, manifest: ModelManifest
) -> None:
    store = _publish(tmp_path, manifest)
    key = input_key("iris", "wrong.csv")
    store.put_bytes(key, b"sepal_length,sepal_width,petal_length\n1,2,3\n")
    summary = batch_support.run(store, tmp_path, key)
    assert summary.get("status") == "failed", summary
    assert "lacks column(s) petal_width" in summary["error"]


def _logits(tmp_path: Path, rows: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "iris.onnx"), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["logits"], {"x": rows})[0])


def test_a_feature_named_as_the_input_is_read_as_a_feature(
    tmp_path: Path, manifest: ModelManifest
) -> None:
    """Training names its input `x`; a table with a column `x` made every record by feature
    name read as that input (`{"x": 5.1, ...}`: "expects shape [-1, 4]; got [1, 1]"), in the
    predict API and in batch JSONL. A record naming every feature, one of them no input, is
    read by feature; `{"x": [row]}` is still the input."""
    features = ("x", "sepal_width", "petal_length", "petal_width")
    named = dataclasses.replace(manifest, features=features)
    records = [dict(zip(features, row, strict=True)) for row in ROWS.tolist()]
    np.testing.assert_allclose(simple.decode({"instances": records}, named)["x"], ROWS)
    columns = {name: ROWS[:, i].tolist() for i, name in enumerate(features)}
    np.testing.assert_allclose(simple.decode({"inputs": columns}, named)["x"], ROWS)
    rows = [{"x": row} for row in ROWS.tolist()]
    np.testing.assert_allclose(simple.decode({"instances": rows}, named)["x"], ROWS)
    store = _publish(tmp_path, named)
    key = input_key("iris", "rows.jsonl")
    store.put_bytes(key, "".join(json.dumps(r) + "\n" for r in records).encode())
    summary = batch_support.run(store, tmp_path, key)
    assert (summary["scored_rows"], summary["failed_rows"]) == (2, 0), summary
