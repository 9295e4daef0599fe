"""`aiaas compare --max-drop METRIC=X`: the comparison as a CI quality gate (exit 1 when the
candidate is worse), found by wiring aiaas into a pipeline. Before, a script had to read the
JSON report with jq, and a gate on `.metrics.delta.accuracy` passed a candidate that answered
NaN on 28% of the holdout: the metrics are over the rows both versions answered.

Real ONNX models (tests/onnx_factory.py) published by `aiaas publish` on a directory store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory

LABELS = "a,b,c"


def nan_when_first_feature_negative(source: Path, path: Path) -> Path:
    """The source's logits, NaN on rows whose x[:, 0] < 0 (logits + 0 * log(x0))."""
    model = onnx.load(source)
    graph = model.graph
    graph.node[-1].output[0] = "raw"
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([0], np.int64), "first"),
            numpy_helper.from_array(np.array([0.0], np.float32), "zero"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Gather", ["x", "first"], ["x0"], axis=1),
            helper.make_node("Log", ["x0"], ["log"]),
            helper.make_node("Mul", ["log", "zero"], ["nan"]),
            helper.make_node("Add", ["raw", "nan"], ["logits"]),
        ]
    )
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """m:1 (production), m:2 = the same weights, m:3 other weights (worse on rows labelled by
    m:1), m:4 = m:1 but NaN on the rows whose first feature is negative; rows.csv labels 40
    rows with m:1's answers (so m:1 is always right); (store uri, rows.csv)."""
    work = tmp_path_factory.mktemp("gate")
    store = LocalStore(work / "store")
    good = onnx_factory.linear_classifier(work / "good.onnx", seed=0)
    files = [good, good, onnx_factory.linear_classifier(work / "other.onnx", seed=5)]
    files.append(nan_when_first_feature_negative(good, work / "nan.onnx"))
    for version, path in enumerate(files, start=1):
        argv = ["--store", store.uri, "publish", str(path), "--name", "m", "--labels", LABELS]
        assert main([*argv, "--version", str(version)]) == 0
    x = np.random.default_rng(1).normal(size=(40, 4)).astype(np.float32)
    logits = ort.InferenceSession(str(good)).run(None, {"x": x})[0]
    labels = np.array(LABELS.split(","))[logits.argmax(axis=1)]
    head = ",".join([f"x_{i}" for i in range(4)] + ["y"])
    rows = [
        ",".join([*map(str, row.tolist()), label]) for row, label in zip(x, labels, strict=True)
    ]
    (work / "rows.csv").write_text(head + "\n" + "\n".join(rows) + "\n")
    return store.uri, work / "rows.csv"


def gate(published: tuple[str, Path], b: str, *extra: str) -> list[str]:
    store, rows = published
    argv = ["--store", store, "compare", "m", "1", b, "--data", str(rows), "--no-progress"]
    return [*argv, "--json", *extra]


def test_a_candidate_worse_than_allowed_fails_the_gate_with_the_report_on_stdout(
    published: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(gate(published, "3", "--max-drop", "accuracy=0.02")) == 1
    out, err = capsys.readouterr()
    report = json.loads(out)  # the report still comes, for the pipeline's artifacts
    metrics = report["metrics"]
    assert metrics["a"]["accuracy"] == 1.0 and metrics["b"]["accuracy"] < 0.98
    drop = metrics["a"]["accuracy"] - metrics["b"]["accuracy"]
    assert err.startswith("aiaas compare: error: quality gate failed: ")
    assert f"accuracy dropped by {drop:.4g} (1 -> {metrics['b']['accuracy']:.4g})" in err
    assert "more than --max-drop accuracy=0.02" in err
    # the verdict is in the document too: a job's saved report says it, and exit 1 with a
    # report is the gate, exit 1 without one an error (hunt_journey7 6)
    assert report["gate"] == {"passed": False, "failures": [err.split("gate failed: ")[1][:-1]]}
    # a limit the candidate keeps passes: exit 0, nothing on stderr
    assert main(gate(published, "3", "--max-drop", f"accuracy={drop + 0.01}")) == 0
    out, err = capsys.readouterr()
    assert err == "" and json.loads(out)["gate"] == {"passed": True, "failures": []}
    assert main(gate(published, "3")) == 0
    assert "gate" not in json.loads(capsys.readouterr().out)  # no --max-drop, no gate
    assert main(gate(published, "2", "--max-drop", "accuracy=0", "--max-drop", "macro_f1=0")) == 0
    # `f1`, as the manifest, `show` and `versions --json` name the macro F1: a usage error before
    assert main(gate(published, "3", "--max-drop", "f1=0")) == 1
    assert "macro_f1 dropped by" in capsys.readouterr().err


def test_a_candidate_that_fails_rows_production_answers_fails_the_gate(
    published: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(gate(published, "4", "--max-drop", "accuracy=0.02")) == 1
    out, err = capsys.readouterr()
    report = json.loads(out)
    refused = report["rows"]["refused"]["b"]
    assert refused > 0 and report["metrics"]["delta"]["accuracy"] == 0  # what jq saw: no drop
    assert f"4 (B) failed {refused} of the rows 1 (A) answered" in err
    # without a gate the comparison is a report, as before
    assert main(gate(published, "4")) == 0


def test_a_gate_the_file_or_the_model_cannot_judge_fails(
    published: tuple[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(gate(published, "2", "--max-drop", "rmse=0.1")) == 1
    err = capsys.readouterr().err
    assert "the report has no rmse (its metrics: accuracy, macro_f1)" in err
    store, rows = published
    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text(
        "\n".join(line.rsplit(",", 1)[0] for line in rows.read_text().split("\n"))
    )
    argv = gate((store, unlabelled), "2", "--max-drop", "accuracy=0.02")
    assert main(argv) == 1
    assert "no labelled rows to judge accuracy on (--label names the column)" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("accuracy", "give METRIC=DROP, e.g. accuracy=0.02"),
        ("latency=1", "unknown metric 'latency': give one of accuracy, macro_f1, r2, mae, rmse"),
        ("accuracy=-0.1", "give a drop of 0 or more"),
        ("accuracy=nan", "give a drop of 0 or more"),
    ],
)
def test_a_malformed_gate_is_a_usage_error_before_any_scoring(
    value: str, said: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["--store", str(tmp_path), "compare", "m", "1", "2", "--data", "x.csv"]
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--max-drop", value])
    assert exited.value.code == 2
    assert said in capsys.readouterr().err


def test_a_mistyped_file_is_said_to_be_no_file_nor_key(
    published: tuple[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file name given without a folder is tried as a store key too: a typo said only "no
    object 'rowz.csv' in store ...", which sent the user looking in the registry."""
    store, rows = published
    monkeypatch.chdir(rows.parent)
    argv = ["--store", store, "compare", "m", "1", "2", "--data", "rowz.csv", "--no-progress"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"--data rowz.csv: no such file, nor a key of the store {store}" in err


def test_a_regressor_given_a_text_label_column_is_told_so_not_no_labelled_rows(
    published: tuple[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A classifier's file (labels a/b/c in y) for a regressor read "no labelled rows", and the
    # gate said "the file has no labelled rows", which hid the cause: the values are text.
    store, rows = published
    for version, seed in (("1", 0), ("2", 1)):
        path = onnx_factory.linear_classifier(tmp_path / f"r{version}.onnx", classes=1, seed=seed)
        assert main(["--store", store, "publish", str(path), "--name", "r"]) == 0
    capsys.readouterr()
    argv = ["--store", store, "compare", "r", "1", "2", "--data", str(rows), "--label", "y"]
    assert main([*argv, "--no-progress"]) == 0
    said = "column 'y' holds no numbers (its 40 values are text, such as "
    assert f"metrics: none ({said}" in capsys.readouterr().out
    assert main([*argv, "--no-progress", "--json", "--max-drop", "mae=0.1"]) == 1
    out, err = capsys.readouterr()
    assert said in err and json.loads(out)["points"]["a"]  # the plot's points still there


def test_an_alias_given_for_a_version_is_told_the_version_it_serves(
    published: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # A pipeline's first guess at "what production serves": `compare m production 3` said
    # "version 'production' of model 'm' not found", `compare m @production 3` "invalid
    # version '@production'" (hunt_journey7 4).
    store, rows = published
    assert main(["--store", store, "promote", "m", "1", "--alias", "production"]) == 0
    capsys.readouterr()
    for given in ("production", "@production"):
        argv = ["--store", store, "compare", "m", given, "3", "--data", str(rows), "--json"]
        assert main(argv) == 1
        out, err = capsys.readouterr()
        assert out == ""
        assert err == (
            f"aiaas compare: error: {given!r} is an alias of m, not a version: compare takes "
            "two versions; m@production serves 1 now (`aiaas show m@production --json | jq -r "
            ".version` prints it for a script)\n"
        )
    # a version and a name that is neither still say what they said
    argv = ["--store", store, "compare", "m", "1", "nosuch", "--data", str(rows)]
    assert main(argv) == 1
    assert "version 'nosuch' of model 'm' not found" in capsys.readouterr().err


def test_a_png_it_cannot_write_is_an_error_without_a_report(
    published: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 1 with the report on stdout is the gate (docs/rollout.md): a --png it could not write
    exited 1 after printing the report, `gate.passed` true, and a gate that failed as well went
    unsaid (rev13 4). Now no report, and the line names both."""
    pytest.importorskip("matplotlib")
    _, rows = published
    png = rows / "c.png"  # under a file: cannot be made
    assert main(gate(published, "3", "--max-drop", "accuracy=1", "--png", str(png))) == 1
    out, err = capsys.readouterr()
    assert out == ""  # was the report, "gate": {"passed": true, ...}
    assert err.startswith(f"aiaas compare: error: cannot write {png}: ")
    assert "quality gate" not in err
    assert main(gate(published, "3", "--max-drop", "accuracy=0.02", "--png", str(png))) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"cannot write {png}: " in err
    assert "; and the quality gate failed: accuracy dropped by" in err
    good = rows.parent / "c.png"
    assert main(gate(published, "3", "--max-drop", "accuracy=1", "--png", str(good))) == 0
    assert json.loads(capsys.readouterr().out)["gate"]["passed"] is True
    assert good.stat().st_size > 0


def test_an_alias_with_a_canary_is_told_both_versions_and_their_shares(
    published: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "serves 1 (and a canary)": the canary, often the version a pipeline means to
    compare, went unnamed (rev13 5)."""
    store, rows = published
    assert main(["--store", store, "promote", "m", "1", "--alias", "canaried"]) == 0
    assert (
        main(["--store", store, "promote", "m", "3", "--alias", "canaried", "--weight", "0.2"]) == 0
    )
    assert main(["--store", store, "show", "m@canaried"]) == 0
    capsys.readouterr()
    argv = ["--store", store, "compare", "m", "canaried", "2", "--data", str(rows), "--json"]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "m@canaried serves 1 (80%) and 3 (20%, a canary) now" in err
