"""A canary that is the baseline's own model file with its classes named in another order.

Version 7 was version 2's ONNX file (the same sha256) published with `--labels b,a,c` where 2
had `a,b,c`. `aiaas rollout clf 7` took it to 100% "within every limit": it answers the same
scores, so no error, no latency, nothing a rollout measures without `--min-agreement`, while
every row 2 answered `a` was answered `b`, with a 200. A canary or rollout of such a version is
now refused, saying which labels to publish it with; a promote without --weight (a renaming on
purpose) moves it with a warning. A model retrained with its classes in another order (another
file) is not refused: its labels name its own columns. Real ONNX files published by the CLI to
a directory store; the real rollout engine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.errors import InvalidInput
from functions.runtime.registry import Registry
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.store import LocalStore
from infra.cli.main import EXIT_ERROR, main
from infra.cli.rollout_commands import _NoMetrics

PLAN = RolloutPlan(steps=(0.1, 1.0), bake_s=60, max_error_rate=0.01)


def classifier(path: Path, seed: int) -> Path:
    """softmax(x @ W): a 3-class model of 2 features, its weights drawn from `seed`."""
    weights = np.random.default_rng(seed).normal(size=(2, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"]),
        ],
        "clf",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", 3])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """m:1 (a,b,c), m:2 its file as b,a,c, m:3 another model as b,a,c; production on 1."""
    root = tmp_path / "store"
    first, other = classifier(tmp_path / "1.onnx", 0), classifier(tmp_path / "3.onnx", 1)
    for path, labels in ((first, "a,b,c"), (first, "b,a,c"), (other, "b,a,c")):
        argv = ["--store", str(root), "publish", str(path), "--name", "m", "--labels", labels]
        assert main(argv) == 0
    assert main(["--store", str(root), "promote", "m", "1"]) == 0
    return root


def alias(store: Path) -> tuple[str, object]:
    record = Registry(LocalStore(store)).alias_record("m", "production")
    assert record is not None
    return record["version"], record.get("weights")


def test_a_rollout_of_the_same_file_relabelled_is_refused(store: Path) -> None:
    engine = RolloutEngine(Registry(LocalStore(store)), _NoMetrics())
    with pytest.raises(InvalidInput) as refused:
        engine.start("m", "2", PLAN, alias="production", actor="ci")
    assert refused.value.message == (
        "version 2 of m does not answer as 1 does (it is the baseline's model with its classes "
        f"named in another order (1's model file, sha256 {sha(store, '1')[:12]}; it: b, a, c; "
        "the baseline: a, b, c): the same scores would be answered as other classes, a row 1 "
        "answers 'a' it would answer 'b', with a 200): publish it again with --labels a,b,c "
        "(the baseline's order); if 1's names are the wrong ones, promote it without --weight "
        "(every caller at once: a renaming on purpose)"
    )
    assert alias(store) == ("1", None)  # nothing moved
    # A retrained model whose classes come in another order is its own: it may roll out.
    record = engine.start("m", "3", PLAN, alias="production", actor="ci")
    assert alias(store) == ("1", {"1": 0.9, "3": 0.1})
    engine.abort("m", "production", "ci")
    assert record.candidate == "3" and alias(store) == ("1", None)


def test_a_canary_of_it_is_refused_and_a_promote_warned(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["--store", str(store), "promote", "m", "2", "--weight", "0.1"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "version 2 of m does not answer as 1 does (it is the baseline's model with its" in err
    assert "publish it again with --labels a,b,c (the baseline's order)" in err
    assert err.count("promote it without --weight") == 1  # the advice is not said twice
    assert alias(store) == ("1", None)
    assert main(["--store", str(store), "promote", "m", "2"]) == 0  # on purpose: moved, said
    assert (
        "warning: version 2 of m is 1's model file with its classes named in another order "
        "(version 2: b, a, c; version 1: a, b, c): a row 1 answered 'a' is answered 'b'; if "
        "that renaming was not meant, move back"
    ) in capsys.readouterr().err
    assert alias(store) == ("2", None)


def sha(store: Path, version: str) -> str:
    return Registry(LocalStore(store)).manifest("m", version).file.sha256
