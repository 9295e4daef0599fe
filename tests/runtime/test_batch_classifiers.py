"""Batch scoring of scikit-learn classifiers (skl2onnx exports, with and without ZipMap): each
row's `label` is what scikit-learn's `predict` says, in CSV, JSONL and NPY, and the model's own
label output (named `label` without ZipMap) is written once, never as a second `label` column."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.batch_support import read_csv, read_jsonl, run
from tests.sklearn_models import FEATURES, Exported, export

OUT = "batch/wine/output"


def published(tmp_path: Path, *, zipmap: bool, string_classes: bool) -> tuple[LocalStore, Exported]:
    model = export("forest", tmp_path, zipmap=zipmap, string_classes=string_classes)
    store = LocalStore(tmp_path / "store")
    assert main(["--store", store.uri, "publish", str(model.path), "--name", "wine"]) == 0
    return store, model


def probabilities_column(zipmap: bool) -> str:
    return "output_probability" if zipmap else "probabilities"


@pytest.mark.parametrize("string_classes", [False, True], ids=["int-classes", "str-classes"])
@pytest.mark.parametrize("zipmap", [True, False], ids=["zipmap", "no-zipmap"])
def test_csv(tmp_path: Path, zipmap: bool, string_classes: bool) -> None:
    store, model = published(tmp_path, zipmap=zipmap, string_classes=string_classes)
    lines = [",".join(["id", *(f"X_{i}" for i in range(FEATURES))])]
    lines += [",".join([f"r{i}", *map(repr, row)]) for i, row in enumerate(model.x_test.tolist())]
    store.put_bytes("batch/wine/input/a.csv", ("\n".join(lines) + "\n").encode())
    summary = run(store, tmp_path, "batch/wine/input/a.csv", chunk_rows=10)
    assert (summary["status"], summary["failed_rows"]) == ("succeeded", 0), summary
    header = store.get_bytes(f"{OUT}/a.csv").decode().splitlines()[0].split(",")
    column = probabilities_column(zipmap)
    assert header[1 + FEATURES :] == [
        *(f"pred_{column}_{c}" for c in range(3)),
        "pred_label",
        "pred_score",
    ]
    rows = read_csv(store, f"{OUT}/a.csv")
    assert [r["pred_label"] for r in rows] == model.expected
    proba = model.estimator.predict_proba(model.x_test)
    np.testing.assert_allclose(
        [float(r["pred_score"]) for r in rows], proba.max(axis=1), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("zipmap", [True, False], ids=["zipmap", "no-zipmap"])
def test_jsonl(tmp_path: Path, zipmap: bool) -> None:
    store, model = published(tmp_path, zipmap=zipmap, string_classes=True)
    text = "".join(
        json.dumps({"X": row, "id": i}) + "\n" for i, row in enumerate(model.x_test.tolist())
    )
    store.put_bytes("batch/wine/input/b.jsonl", text.encode())
    assert run(store, tmp_path, "batch/wine/input/b.jsonl")["status"] == "succeeded"
    raw = store.get_bytes(f"{OUT}/b.jsonl").decode().splitlines()
    first = json.loads(raw[0], object_pairs_hook=lambda pairs: [k for k, _ in pairs])
    assert len(first) == len(set(first)), f"duplicate fields: {first}"
    rows = read_jsonl(store, f"{OUT}/b.jsonl")
    assert [r["pred_label"] for r in rows] == model.expected
    column = f"pred_{probabilities_column(zipmap)}"
    proba = model.estimator.predict_proba(model.x_test)
    np.testing.assert_allclose([r[column] for r in rows], proba, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("zipmap", [True, False], ids=["zipmap", "no-zipmap"])
def test_npy(tmp_path: Path, zipmap: bool) -> None:
    store, model = published(tmp_path, zipmap=zipmap, string_classes=True)
    buffer = io.BytesIO()
    np.save(buffer, model.x_test)
    store.put_bytes("batch/wine/input/c.npy", buffer.getvalue())
    assert run(store, tmp_path, "batch/wine/input/c.npy")["status"] == "succeeded"
    with np.load(io.BytesIO(store.get_bytes(f"{OUT}/c.npz"))) as arrays:
        assert sorted(arrays.files) == sorted([probabilities_column(zipmap), "label", "score"])
        assert arrays["label"].tolist() == model.expected
        proba = model.estimator.predict_proba(model.x_test)
        np.testing.assert_allclose(
            arrays[probabilities_column(zipmap)], proba, rtol=1e-4, atol=1e-5
        )
