"""A model exported with its batch fixed at 1 and the same network re-exported with a dynamic
batch axis (what publish's note advises) take the same requests: each runs any number of rows.

`aiaas compare` refused the pair ("read different inputs (x float32 [-1, 4] vs x float32
[1, 4])") and `aiaas rollout` / a weighted promote refused the re-export as a candidate, saying
production's callers "would get a 422 from it", which neither version answers them
(hunt_journey2 2). A batch fixed at more than 1 still differs: each request must hold that many
rows. The real CLI on a real directory store, real ONNX files published by `aiaas publish`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.registry import Registry
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.rollout.startable import startable
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory

WEIGHTS = np.random.default_rng(3).normal(size=(4, 2)).astype(np.float32)


def _regressor(path: Path, batch: str | int, features: int = 4, double: bool = False) -> Path:
    """y = x @ W, float32 [batch, 4] -> [batch, 2]: one network, its batch axis as exported
    (`torch.onnx.export` without `dynamic_shapes` writes the example's 1); or of other
    `features`, or float64 (`double`: a torch model exported after `.double()`)."""
    kind = TensorProto.DOUBLE if double else TensorProto.FLOAT
    weights = np.resize(WEIGHTS, (features, 2)).astype(np.float64 if double else np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "regressor",
        [helper.make_tensor_value_info("x", kind, [batch, features])],
        [helper.make_tensor_value_info("y", kind, [batch, 2])],
        initializer=[numpy_helper.from_array(weights, "W")],
    )
    return onnx_factory.save(graph, path)


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """m:1 dynamic batch (production), m:2 fixed at 1, m:3 fixed at 2: published by the CLI."""
    root = tmp_path / "store"
    for version, batch in (("1", "N"), ("2", 1), ("3", 2)):
        path = _regressor(tmp_path / f"m{version}.onnx", batch)
        argv = ["--store", str(root), "publish", str(path), "--name", "m", "--version", version]
        assert main([*argv, *(["--alias", "production"] if version == "1" else [])]) == 0
    capsys.readouterr()
    return root


def _cli(store: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--store", str(store), *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("a, b", [("1", "2"), ("2", "1")])
def test_compare_scores_a_batch_fixed_at_one_against_a_dynamic_export(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], a: str, b: str
) -> None:
    rows = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    np.save(tmp_path / "rows.npy", rows)
    code, out, err = _cli(
        store, capsys, "compare", "m", a, b, "--data", str(tmp_path / "rows.npy"), "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["rows"]["compared"] == 7 and report["rows"]["failed"] == 0, report
    assert report["outputs_compared"] == ["y"] and report["max_abs_diff"] == 0.0, report


def test_compare_still_refuses_a_batch_fixed_at_two(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "rows.npy", np.zeros((3, 4), np.float32))
    code, _, err = _cli(
        store, capsys, "compare", "m", "1", "3", "--data", str(tmp_path / "rows.npy")
    )
    assert code == 1 and "read different inputs" in err and "[2, 4]" in err, err


def test_a_rollout_or_canary_of_the_other_export_starts(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(store, capsys, "promote", "m", "2", "--weight", "0.3")
    assert code == 0, err
    assert _cli(store, capsys, "rollback", "m")[0] == 0
    # What `aiaas rollout m 2` checks before its first move (it said "the callers of
    # 'production' would get a 422 from it"), in both directions.
    registry = Registry(LocalStore(store))
    plan = RolloutPlan(steps=(0.1, 1.0), bake_s=60.0, max_error_rate=0.01)
    seen, _ = startable(registry, "m", "production", "2", plan)
    assert seen.target is not None and seen.target.version == "1"
    registry.set_alias("m", "production", "2")
    startable(registry, "m", "production", "1", plan)


def test_a_canary_fixed_at_two_is_still_refused(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(store, capsys, "promote", "m", "3", "--weight", "0.3")
    assert code == 1 and "takes shape [2, 4], not [-1, 4]" in err, err


FIXED = "a batch fixed at 1 takes any number of rows, run one by one"  # once, after the shapes


@pytest.fixture
def others(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """m:4 fixed at 1 with 5 features, m:5 fixed at 1 in float64: published by the CLI."""
    for version, path in (
        ("4", _regressor(tmp_path / "m4.onnx", 1, features=5)),
        ("5", _regressor(tmp_path / "m5.onnx", 1, double=True)),
    ):
        argv = ["publish", str(path), "--name", "m", "--version", version]
        assert main(["--store", str(store), *argv]) == 0
    capsys.readouterr()
    return store


def test_a_refused_candidate_fixed_at_one_is_said_in_its_shape_as_shown(
    others: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aiaas rollout m 4` said its input "takes shape [-1, 5]" where `aiaas show` says
    [1, 5] (review_rev8 5): the shape as declared, and what its batch of 1 means."""
    assert "x                    float32  [1, 5]" in _cli(others, capsys, "show", "m:4")[1]
    said = f"(its input 'x' takes shape [1, 5], not [-1, 4]; {FIXED}): the callers"
    for argv in (("rollout", "m", "4"), ("promote", "m", "4", "--weight", "0.3")):
        code, _, err = _cli(others, capsys, *argv)
        assert code == 1 and said in err, err
    code, _, err = _cli(others, capsys, "promote", "m", "5", "--weight", "0.3")
    assert code == 1 and "(its input 'x' is float64, not float32)" in err, err
    # Both fixed at 1: said once, in the rollout's own parentheses without a second pair inside.
    assert _cli(others, capsys, "promote", "m", "4")[0] == 0
    code, _, err = _cli(others, capsys, "rollout", "m", "5")
    said = f"(its input 'x' is float64 of shape [1, 4], not float32 of shape [1, 5]; {FIXED}): "
    assert code == 1 and said in err, err


@pytest.mark.parametrize(
    "a, b, said",
    [
        ("1", "5", "version 1's input 'x' is float32, 5's float64"),
        ("5", "1", "version 5's input 'x' is float64, 1's float32"),
        ("1", "4", f"version 1's input 'x' takes shape [-1, 4], 4's [1, 5] ({FIXED})"),
        (
            "4",
            "5",
            f"version 4's input 'x' is float32 of shape [1, 5], 5's float64 of shape [1, 4] "
            f"({FIXED})",  # said once, not after each shape (review_rev10 4)
        ),
    ],
)
def test_compare_says_what_differs_not_the_batch_fixed_at_one(
    others: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], a: str, b: str, said: str
) -> None:
    """`aiaas compare mlp 1 4` said "x float32 [-1, 6] vs x float64 [1, 6]": the batch axis
    read as a difference where the element type was the whole of it (review_rev8 5)."""
    np.save(tmp_path / "rows.npy", np.zeros((3, 4), np.float32))
    code, _, err = _cli(others, capsys, "compare", "m", a, b, "--data", str(tmp_path / "rows.npy"))
    assert code == 1, err
    assert f"versions {a} and {b} of m read different inputs: {said}; compare scores" in err, err
