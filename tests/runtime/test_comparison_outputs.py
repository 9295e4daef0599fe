"""`aiaas compare` of a trained version with candidates published by `aiaas publish` (found
walking a rollout journey: `aiaas compare iris 2 3 --data holdout.csv`): outputs described only
by training are still compared, a version answering NaN is refused as predict refuses it, and
the truth column is found from either version's training target."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from functions.runtime.cache import ArtifactCache
from functions.runtime.comparison.run import CompareRequest, compare_versions
from functions.runtime.errors import InvalidInput
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.onnx_factory import linear_classifier, manifest_for

LABELS = ("setosa", "versicolor", "virginica")
ROWS = np.random.default_rng(4).normal(size=(30, 4)).astype(np.float32)
KEY = "batch/m/input/rows.csv"


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> ModelPool:
    """m:1 as `aiaas train` writes it (output described, training target `species`); m:2,
    m:3, m:4 and m:5 as `aiaas publish` does (no description, no target): 2 other weights, 3
    answers NaN, 4 has a fourth class, 5 the same four classes numbered."""
    work = tmp_path_factory.mktemp("outputs")
    registry = Registry(LocalStore(work / "store"))
    trained = linear_classifier(work / "1.onnx", seed=1)
    manifest = manifest_for(trained, "m", "1", labels=LABELS)
    output = dataclasses.replace(manifest.outputs[0], description="class scores (pre-softmax)")
    training = {"dataset": {"target": "species"}}
    registry.publish(dataclasses.replace(manifest, outputs=(output,), training=training), trained)
    for version, bias in (("2", 0.0), ("3", float("nan"))):
        path = linear_classifier(work / f"{version}.onnx", seed=5, bias=bias)
        registry.publish(manifest_for(path, "m", version, labels=LABELS), path)
    wider = linear_classifier(work / "4.onnx", classes=4)  # retrained with a fourth class
    registry.publish(manifest_for(wider, "m", "4", labels=(*LABELS, "nebbiolo")), wider)
    # The same four classes numbered: no name in common with m:1, nothing links them.
    registry.publish(manifest_for(wider, "m", "5", labels=("0", "1", "2", "3")), wider)
    truth = [LABELS[i % 3] for i in range(len(ROWS))]
    lines = ["x_0,x_1,x_2,x_3,species"] + [
        ",".join([*map(str, row.tolist()), label]) for row, label in zip(ROWS, truth, strict=True)
    ]
    registry.store.put_bytes(KEY, ("\n".join(lines) + "\n").encode())
    return ModelPool(registry, ArtifactCache(registry.store, work / "cache"))


def test_outputs_described_by_one_version_only_are_compared(pool: ModelPool) -> None:
    report = compare_versions(pool, CompareRequest("m", "1", "2", KEY))
    w1 = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    w2 = np.random.default_rng(5).normal(size=(4, 3)).astype(np.float32)
    expected = np.abs(ROWS @ w2 - ROWS @ w1).max()
    assert report["max_abs_diff"] == pytest.approx(float(expected), rel=1e-5)
    assert report["max_abs_diff"] > 1  # said 0 for versions agreeing on few labels


@pytest.mark.parametrize(("a", "b", "side"), [("1", "3", "B"), ("3", "1", "A")])
def test_a_version_answering_nan_is_refused_as_predict_refuses_it(
    pool: ModelPool, a: str, b: str, side: str
) -> None:
    """As A, its NaN rows were compared: labels from an argmax of NaN "agreed" and its
    differences counted 0; now every row is refused by it, named, as predict and batch do."""
    with pytest.raises(InvalidInput) as caught:
        compare_versions(pool, CompareRequest("m", a, b, KEY))
    assert f"version 3 ({side}) refused this row" in caught.value.message
    assert "answered NaN in output 'logits'" in caught.value.message


def test_the_truth_column_is_found_from_either_version_s_training(pool: ModelPool) -> None:
    report = compare_versions(pool, CompareRequest("m", "2", "1", KEY))
    found = report["metrics"]
    assert found["label"] == "species" and found["rows"] == len(ROWS)
    assert 0 <= found["b"]["accuracy"] <= 1


def test_a_class_added_compares_class_scores_on_the_classes_both_have(pool: ModelPool) -> None:
    """Retrained with a new class, m:4's logits are [-1, 4] against m:1's [-1, 3]: they are
    compared on the three classes both have, by name, as the shadow compares them (they were
    left out: "none alike to compare")."""
    report = compare_versions(pool, CompareRequest("m", "1", "4", KEY))
    assert report["outputs_compared"] == ["logits"]
    w1 = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    w4 = np.random.default_rng(0).normal(size=(4, 4)).astype(np.float32)
    expected = np.abs(ROWS @ w4[:, :3] - ROWS @ w1).max()
    assert report["max_abs_diff"] == pytest.approx(float(expected), rel=1e-5)
    logits = ROWS @ w4
    nebbiolo = int((logits.argmax(axis=1) == 3).sum())
    assert 0 < nebbiolo < len(ROWS)
    differ = report["labels_differ"]
    assert (differ["only_a"], differ["only_b"]) == ([], ["nebbiolo"])
    assert differ["unshared_rows"] == nebbiolo


def test_versions_with_no_output_alike_say_so_not_a_difference_of_0(
    pool: ModelPool, capsys: pytest.CaptureFixture[str]
) -> None:
    # m:5's logits are [-1, 4] against m:1's [-1, 3], and no class name links them: only labels
    # are compared, and the summary said "outputs: max |B-A| 0", identical outputs.
    report = compare_versions(pool, CompareRequest("m", "1", "5", KEY))
    assert report["outputs_compared"] == [] and report["agreement"] is None
    assert main(["--store", pool.registry.store.uri, "compare", "m", "1", "5", "--data", KEY]) == 0
    out = capsys.readouterr().out
    assert "max |B-A|" not in out
    assert (
        "  outputs: none alike to compare (A logits float32 [-1, 3], B logits float32 [-1, 4]); "
        "labels only\n"
    ) in out


def test_a_regressor_of_several_targets_says_why_it_has_no_metrics(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 3-target regressor ([N, 3], no labels) compared on a file with a `label` column said
    "metrics: none (no labelled rows)", and --max-drop failed "the file has no labelled rows"
    (outputs hunt): the rows have labels; the output has 3 values a row. A truth of 3 values
    a row would be scored (tests/infra/test_compare_several_values.py); one value a row is
    told so."""
    work = tmp_path_factory.mktemp("targets")
    store = LocalStore(work / "store")
    registry = Registry(store)
    for version in ("1", "2"):
        path = linear_classifier(work / f"{version}.onnx", seed=int(version))
        registry.publish(manifest_for(path, "r", version), path)
    lines = ["x_0,x_1,x_2,x_3,label"] + [",".join(map(str, row)) + ",1.5" for row in ROWS.tolist()]
    store.put_bytes("batch/r/input/rows.csv", ("\n".join(lines) + "\n").encode())
    pool = ModelPool(registry, ArtifactCache(store, work / "cache"))
    report = compare_versions(pool, CompareRequest("r", "1", "2", "batch/r/input/rows.csv"))
    why = (
        "'label' holds no 3 numbers a row (such as '1.5') to compare 'logits''s 3 values with: "
        "name the truth's columns T_0 ... T_2 and give --label T, or a JSONL field holding a "
        "list of 3"
    )
    assert (report["metrics"], report["metrics_unavailable"]) == (None, why)
    argv = ["--store", store.uri, "compare", "r", "1", "2", "--data", "batch/r/input/rows.csv"]
    assert main([*argv, "--label", "label", "--max-drop", "r2=0.01"]) == 1
    out = capsys.readouterr()
    assert f"  metrics: none ({why})" in out.out
    assert f"no r2 to judge: {why}" in out.out + out.err
