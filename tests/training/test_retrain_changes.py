"""Retraining from one spec on each week's file says what changed against the version the name
serves (hunt_journey8 2): a class absent this week (never answered), a new class moving the score
columns of the classes after it (an OIP or batch-output reader taking `logits` by position read
another class), categories new and gone, columns added or renamed, features in another order
(a positional row read as other features), last week's file left in place (the very same
model). `aiaas train --publish` said none of it. Through the real CLI on CSVs as a weekly job
gets them, a real directory store; the claims checked against the published manifests."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import yaml
from onnx import TensorProto, helper, numpy_helper

from infra.cli.main import main
from tests import onnx_factory
from tests.torchless import torch_or_skip


def _train(tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    argv = ["--store", str(tmp_path / "store"), "train", str(tmp_path / "job.yaml")]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--out", str(tmp_path / "run"), "--no-progress", *extra])
    return code, out.getvalue(), err.getvalue()


def _week(tmp_path: Path, seed: int, cities: list[str], classes: list[str]) -> None:
    """400 rows of age (gaps), income, city, plan -> churn in `classes`, written as the job's
    data file (the same path every week)."""
    rng = np.random.default_rng(seed)
    lines = ["age,income,city,plan,churn"]
    for i in range(400):
        age = "" if i % 13 == 0 else str(int(rng.integers(18, 80)))
        city, plan = rng.choice(cities), rng.choice(["basic", "pro"])
        lines.append(f"{age},{int(rng.normal(5e4, 1e4))},{city},{plan},{classes[i % len(classes)]}")
    (tmp_path / "week.csv").write_text("\n".join(lines) + "\n")


def _spec(tmp_path: Path, **dataset: object) -> None:
    spec = {
        "name": "churn", "task": "classification",
        "dataset": {"path": "week.csv", "target": "churn", **dataset},
        "recipe": {"name": "mlp", "params": {"hidden": [8]}}, "epochs": 5, "learning_rate": 0.05,
        # what changed between weeks is the point, not the exporter: the TorchScript one takes
        # 0.04 s where dynamo's takes ~2.4 s a run (training/README.md), ten runs here
        "export": {"exporter": "torchscript"},
    }  # fmt: skip
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec))


def _labels(tmp_path: Path, version: str) -> list[str]:
    manifest = tmp_path / "store" / "models" / "churn" / "versions" / version / "manifest.json"
    return list(json.loads(manifest.read_text())["labels"])


def test_a_week_without_a_class_then_with_a_new_one_is_said_against_production(
    tmp_path: Path,
) -> None:
    torch_or_skip()  # it trains
    _spec(tmp_path)
    _week(tmp_path, 1, ["Lyon", "Nice", "Paris"], ["churn", "stay", "upgrade"])
    code, _, err = _train(tmp_path, "--publish", "--alias", "production")
    assert code == 0, err
    assert "against" not in err  # a first version: nothing to compare with
    assert "Changes against" not in (tmp_path / "run" / "card" / "card.md").read_text()

    _week(tmp_path, 2, ["Lyon", "Paris", "Marseille"], ["churn", "stay"])
    code, out, err = _train(tmp_path, "--publish", "--json")
    assert code == 0, err
    gone = "class 'upgrade' of churn:1 is in no row of this data: this version never answers it"
    city = (
        "column 'city': category 'Nice' of churn:1 is in no training row of this data: this "
        "version reads it as unseen (all zeros)"
    )
    assert json.loads(out)["warnings"] == [gone, city], out
    assert f"warning: {gone}" in err and f"warning: {city}" in err, err
    new = "note: column 'city': new category 'Marseille' (churn:1 reads it as unseen: all zeros)"
    assert new in err, err
    card = (tmp_path / "run" / "card" / "card.md").read_text()
    section = card[card.index("## Changes against churn:1") : card.index("## Classes")]
    assert "- warning: class 'upgrade' of churn:1" in section, section
    assert "- note: column 'city': new category 'Marseille'" in section, section
    assert _labels(tmp_path, "2") == ["churn", "stay"]

    _week(tmp_path, 3, ["Lyon", "Nice", "Paris"], ["churn", "downgrade", "stay", "upgrade"])
    code, out, err = _train(tmp_path, "--publish")  # still against production, churn:1
    assert code == 0, err
    assert (
        "warning: the classes' score columns moved against churn:1: 'stay' now column 2 (was "
        "1), 'upgrade' now column 3 (was 2); a client or batch-output reader taking the scores "
        "by position (OIP `logits`, `pred_logits_<i>`) reads another class"
    ) in err, err
    assert "note: new class 'downgrade', which churn:1 does not answer" in err, err
    before, after = _labels(tmp_path, "1"), _labels(tmp_path, "3")  # what the warning says
    assert (before.index("stay"), after.index("stay")) == (1, 2)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["extras"]["changes"]["against"] == "churn:1"


def test_the_same_file_again_and_columns_in_another_order_are_said(tmp_path: Path) -> None:
    torch_or_skip()
    _spec(tmp_path)
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(300, 3)).round(3)
    label = np.where(rows[:, 0] - rows[:, 2] > 0, "churn", "stay")
    written = [f"{a},{b},{c},{y}" for (a, b, c), y in zip(rows.tolist(), label, strict=True)]
    (tmp_path / "week.csv").write_text("\n".join(["age,income,tenure,churn", *written]) + "\n")
    assert _train(tmp_path, "--publish", "--alias", "production")[0] == 0

    code, out, err = _train(tmp_path, "--json")  # last week's file, not replaced: a dry run
    assert code == 0, err
    assert json.loads(out)["warnings"][-1].startswith("the same model file as churn:1 (sha256 "), (
        out
    )

    moved = [f"{c},{b},{a},{y}" for (a, b, c), y in zip(rows.tolist(), label, strict=True)]
    (tmp_path / "week.csv").write_text("\n".join(["tenure,income,age,churn", *moved]) + "\n")
    code, _, err = _train(tmp_path)
    assert code == 0, err
    assert (
        "warning: reads its features in another order than churn:1 (tenure, income, age; it: "
        "age, income, tenure): a row sent by position (simple JSON `inputs`, an OIP tensor) "
        "would be read as other features (a rollout or canary is refused); keep the order with "
        "`dataset.features: [age, income, tenure]` in the spec"
    ) in err, err
    _spec(tmp_path, features=["age", "income", "tenure"])  # the advice taken
    code, _, err = _train(tmp_path)
    assert code == 0, err
    assert "another order" not in err, err
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["features"] == ["age", "income", "tenure"]
    # the same rows in the spec's order: week 1's very model, positional rows read as before
    assert "warning: the same model file as churn:1" in err, err


def test_a_column_of_numbers_read_as_text_this_week_is_said(tmp_path: Path) -> None:
    """Most cells of `band` written `unknown` this week: the column is text now (a string
    input), which production's callers send as numbers."""
    torch_or_skip()
    _spec(tmp_path)
    rng = np.random.default_rng(1)

    def week(unknown: bool) -> None:
        lines = ["band,income,churn"]
        for i in range(300):
            band = "unknown" if unknown and i % 3 else str(10 * int(rng.integers(1, 6)))
            lines.append(f"{band},{rng.normal():.3f},{['churn', 'stay'][i % 2]}")
        (tmp_path / "week.csv").write_text("\n".join(lines) + "\n")

    week(unknown=False)
    assert _train(tmp_path, "--publish", "--alias", "production")[0] == 0
    week(unknown=True)
    code, out, err = _train(tmp_path, "--json")
    assert code == 0, err
    changed = [w for w in json.loads(out)["warnings"] if "churn:1" in w]  # not a missed class
    assert changed == [
        "reads column 'band' as string where churn:1 reads float32: a value its callers send is "
        "refused (a 422; a rollout or canary from it is refused too); a column is text when "
        "most of its cells are no number",
        "takes input 'band', 'income' where churn:1 takes 'x': OIP tensors named as churn:1 "
        "reads them and rows sent by position (simple JSON `inputs`) are refused by this "
        "version (a rollout or canary from it is refused too)",
    ], out


def test_an_input_only_renamed_says_oip_tensors_are_refused_not_rows(tmp_path: Path) -> None:
    """A scikit-learn export serves its features as one input `X`; `aiaas train` names it `x`.
    The warning said rows sent by position were refused: simple JSON rows go to the one input
    either way; only OIP tensors named `X` are refused (rev14 5)."""
    torch_or_skip()
    _publish_export(tmp_path)
    _spec(tmp_path)
    rng = np.random.default_rng(2)
    rows = [f"{rng.normal():.3f},{rng.normal():.3f},{['churn', 'stay'][i % 2]}" for i in range(200)]
    (tmp_path / "week.csv").write_text("\n".join(["age,income,churn", *rows]) + "\n")
    code, out, err = _train(tmp_path, "--json")
    assert code == 0, err
    assert [w for w in json.loads(out)["warnings"] if "churn:1" in w] == [
        "takes input 'x' where churn:1 takes 'X': OIP tensors named as churn:1 reads them are "
        "refused by this version (a rollout or canary from it is refused too)"
    ], out


def test_a_served_manifest_of_another_layout_never_fails_the_run(tmp_path: Path) -> None:
    """A hand-edited served manifest (a `preprocessing.columns` entry that is no mapping) made
    `aiaas train` die after training with an AttributeError (rev14 6): it is noted instead."""
    torch_or_skip()
    manifest = _publish_export(tmp_path)
    data = json.loads(manifest.read_text())
    data["preprocessing"] = {**data.get("preprocessing", {}), "columns": {"city": "text"}}
    manifest.write_text(json.dumps(data))
    _spec(tmp_path)
    lines = [
        "age,city,churn",
        *(f"{i % 50},{['Lyon', 'Nice'][i % 2]},{['churn', 'stay'][i % 3 % 2]}" for i in range(200)),
    ]
    (tmp_path / "week.csv").write_text("\n".join(lines) + "\n")
    code, out, err = _train(tmp_path, "--json")
    assert code == 0, err
    assert (
        "note: could not compare with churn:1 (AttributeError: 'str' object has no attribute "
        "'get')\n"
    ) in err, err
    assert json.loads(out)["metrics"]["rows"] > 0, out  # trained, and --json is one document
    card = (tmp_path / "run" / "card" / "card.md").read_text()
    assert "could not compare with churn:1" in card


def test_a_renamed_column_is_said_as_one_change(tmp_path: Path) -> None:
    """`income` called `revenue` this week: two warnings (a column read, a column gone) where
    training/README.md promises columns "renamed" (rev14 7)."""
    torch_or_skip()
    _publish_export(tmp_path)
    _spec(tmp_path)
    rng = np.random.default_rng(3)
    rows = [f"{rng.normal():.3f},{rng.normal():.3f},{['churn', 'stay'][i % 2]}" for i in range(200)]
    (tmp_path / "week.csv").write_text("\n".join(["age,revenue,churn", *rows]) + "\n")
    code, out, err = _train(tmp_path, "--json")
    assert code == 0, err
    assert [w for w in json.loads(out)["warnings"] if "churn:1" in w] == [
        "reads column 'revenue' where churn:1 reads 'income' (renamed?): its callers send "
        "'income', not 'revenue' (a record lacking it is a 422; a rollout or canary from it is "
        "refused)"
    ], out


def _publish_export(tmp_path: Path) -> Path:
    """churn:1 at production: an export (as scikit-learn's) reading age, income as one input
    `X`; its manifest's path."""
    weights = numpy_helper.from_array(np.array([[1.0, -1.0], [-1.0, 1.0]], np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["logits"])],
        "sk",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])],
        initializer=[weights],
    )
    model = onnx_factory.save(graph, tmp_path / "sk.onnx")
    argv = ["--store", str(tmp_path / "store"), "publish", str(model), "--name", "churn"]
    argv += ["--labels", "churn,stay", "--features", "age,income", "--alias", "production"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 0
    return tmp_path / "store" / "models" / "churn" / "versions" / "1" / "manifest.json"
