"""Inputs beside others that explanations and drift baselines refused though predict and batch
score them. An id a row ([N] int64, an embedding's index, as torch models take one) beside
feature inputs ("input 'ids' has no fixed row shape ([-1])"): beside other inputs a [-1] input
is one column, as [-1, 1] is. A bool input ("is bool, not numbers"): a 0/1 column, a background
share of 0.5 or more true."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_mask_model_files import masked
from tests.publishing import published_cli


def id_and_features(path: Path) -> Path:
    """score [N, 1] = table[ids] + feats @ w: ids [N] int64 into a 10-row table, feats [N, 3]."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["picked"]),  # [N, 1]
        helper.make_node("MatMul", ["feats", "w"], ["mixed"]),
        helper.make_node("Add", ["picked", "mixed"], ["score"]),
    ]
    inputs: onnx_factory.Tensors = {
        "ids": (TensorProto.INT64, ["N"]),
        "feats": (TensorProto.FLOAT, ["N", 3]),
    }
    weights = [
        numpy_helper.from_array(rng.normal(size=(10, 1)).astype(np.float32), "table"),
        numpy_helper.from_array(rng.normal(size=(3, 1)).astype(np.float32), "w"),
    ]
    outputs: onnx_factory.Tensors = {"score": (TensorProto.FLOAT, ["N", 1])}
    return onnx_factory.over_rows(path, nodes, inputs, outputs, weights)


def id_rows(
    path: Path, an_id: Callable[[], int], rng: np.random.Generator, rows: int
) -> tuple[Path, list[dict[str, Any]]]:
    """`rows` JSONL records of `id_and_features`' inputs, their ids drawn by `an_id`."""
    records = [{"ids": an_id(), "feats": rng.normal(size=3).round(3).tolist()} for _ in range(rows)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path, records


def masked_rows(path: Path, rng: np.random.Generator, rows: int) -> Path:
    """A CSV of `masked`'s inputs, its bool columns True / False as pandas writes them."""
    x, masks = rng.normal(size=(2, rows)), rng.integers(0, 2, (2, rows))
    lines = [
        f"{a:.3f},{b:.3f},{bool(m0)},{bool(m1)}\n" for a, b, m0, m1 in zip(*x, *masks, strict=True)
    ]
    path.write_text("x_0,x_1,mask_0,mask_1\n" + "".join(lines))
    return path


def id_published(
    tmp_path: Path, ids: range, seed: int, rows: int
) -> tuple[Path, LocalStore, Path, list[dict[str, Any]]]:
    """`id_and_features` published by the CLI as m:1, and JSONL training records of `rows`,
    their ids drawn from `ids`."""
    model = id_and_features(tmp_path / "m.onnx")
    rng = np.random.default_rng(seed)
    train, records = id_rows(tmp_path / "train.jsonl", lambda: int(rng.choice(ids)), rng, rows)
    return model, published_cli(tmp_path, model), train, records


def masked_published(tmp_path: Path, seed: int, rows: int) -> tuple[Path, LocalStore, Path]:
    """`masked` published by the CLI as m:1, and a training CSV of `rows` of its inputs."""
    model = masked(tmp_path / "m.onnx")
    train = masked_rows(tmp_path / "train.csv", np.random.default_rng(seed), rows)
    return model, published_cli(tmp_path, model), train


def baselined(store: LocalStore, train: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """`aiaas baseline m TRAIN` run; the drift baseline's feature names."""
    assert main(["--store", store.uri, "baseline", "m", str(train)]) == 0, capsys.readouterr()
    capsys.readouterr()
    drift = json.loads(store.get_bytes(f"{version_prefix('m', '1')}/{BASELINE_FILE}"))
    return list(drift["features"])


def background_rows(
    store: LocalStore, train: Path, capsys: pytest.CaptureFixture[str]
) -> list[list[float]]:
    """`aiaas baseline m TRAIN` run; the rows of the explanation background it stored."""
    baselined(store, train, capsys)
    key = f"{version_prefix('m', '1')}/background.json"
    return list(json.loads(store.get_bytes(key))["rows"])


def explained_row(
    store: LocalStore, row: dict[str, object], model: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    """`aiaas explain m --inputs ROW --json`'s one explanation, checked: its prediction is
    onnxruntime's on the same row, and each output's attributions add up to it less the base
    value (Kernel SHAP, exact for these few features)."""
    code = main(["--store", store.uri, "explain", "m", "--inputs", json.dumps(row), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    (explained,) = json.loads(out)["explanations"]
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    feeds = {i.name: np.array([row[i.name]]) for i in session.get_inputs()}
    feeds = {n: v.astype(np.float32) if v.dtype == np.float64 else v for n, v in feeds.items()}
    assert explained["prediction"] == pytest.approx(session.run(None, feeds)[0][0].tolist())
    for output, base in enumerate(explained["base_value"]):
        total = sum(a[output] for a in explained["attributions"]) + base
        assert total == pytest.approx(explained["prediction"][output], abs=1e-4)
    return dict(explained)


def test_an_id_input_is_a_column_to_explain_and_to_watch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, store, train, records = id_published(tmp_path, range(10), seed=1, rows=40)
    assert baselined(store, train, capsys) == ["ids", "feats_0", "feats_1", "feats_2"]
    explained_row(store, records[0], model, capsys)


def test_a_bool_input_is_a_0_1_column_to_explain_and_to_watch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It was "input 'mask' is bool, not numbers": no explanation, baseline or drift at all.
    model, store, train = masked_published(tmp_path, seed=2, rows=40)
    assert baselined(store, train, capsys) == ["x_0", "x_1", "mask_0", "mask_1"]
    explained_row(store, {"x": [1.5, -2.0], "mask": [True, False]}, model, capsys)


def test_a_background_centre_of_ids_is_an_id_the_data_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each centre was its cluster's mean: ids 4.5 and 6.27, rounded to ids that were in no row
    # of the data (here only even ids are), so an id's attribution measured the distance to an
    # id nobody gave. A centre's id is now its cluster's most frequent one.
    model, store, train, records = id_published(tmp_path, range(0, 10, 2), seed=3, rows=200)
    rows = background_rows(store, train, capsys)
    ids = [row[0] for row in rows]
    assert len(ids) == 10 and set(ids) <= {0, 2, 4, 6, 8}, ids
    feats = np.array([row[1:] for row in rows])
    assert len(np.unique(feats[:, 0])) == 10  # the amounts still their clusters' means
    explained_row(store, records[0], model, capsys)


def test_a_background_centre_of_a_bool_is_its_clusters_majority(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, store, train = masked_published(tmp_path, seed=4, rows=200)
    masks = {value for row in background_rows(store, train, capsys) for value in row[2:]}
    assert masks <= {0, 1}, masks  # a share of 0.5 is no flag anyone set
