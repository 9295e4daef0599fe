"""A rollout's candidate, or a canary set by hand, must answer what the baseline's callers read.

The same network re-exported without `output_names` (torch's dynamo exporter names the output
`linear_1`, not `logits`) took production's inputs, so `aiaas rollout` started, and went to 100%
and "succeeded" while every OIP request naming `logits` got a 422 ("unknown output") and every
simple-JSON caller found no `logits`; a version published without `--labels` answered `?top_k`
with a 422 and no `predictions` (hunt_journey4 1). Neither is a 5xx the error rate counts. The
real CLI and control plane on a real directory store, ONNX files published by `aiaas publish`,
and the real served answers that the refusal stands for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from onnx import TensorProto, helper, numpy_helper

from functions.control.app import create_app
from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.functions.test_predict_events import http_event

WEIGHTS = np.random.default_rng(4).normal(size=(4, 3)).astype(np.float32)
LABELS = "cat,dog,fox"


def _classifier(path: Path, output: str) -> Path:
    """logits = x @ W, float32 [N, 4] -> [N, 3], its output named `output`."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], [output])],
        "scores",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(WEIGHTS, "W")],
    )
    return onnx_factory.save(graph, path)


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """m:1 `logits` with labels (production); m:2 the same network answering `linear_1`, with
    labels; m:3 m:1's file without --labels; m:4 m:1's file and labels again."""
    root = tmp_path / "store"
    logits = _classifier(tmp_path / "logits.onnx", "logits")
    renamed = _classifier(tmp_path / "renamed.onnx", "linear_1")
    for version, path, labels in (
        ("1", logits, True),
        ("2", renamed, True),
        ("3", logits, False),
        ("4", logits, True),
    ):
        argv = ["--store", str(root), "publish", str(path), "--name", "m", "--version", version]
        argv += ["--labels", LABELS] if labels else []
        assert main([*argv, *(["--alias", "production"] if version == "1" else [])]) == 0
    capsys.readouterr()
    return root


def _cli(store: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["--store", str(store), *argv])
    return code, capsys.readouterr().err


def _production(store: Path) -> str:
    return Registry(LocalStore(store)).alias_target("m", "production").describe()  # type: ignore[union-attr]


RENAMED = "(it has no output 'logits' (its outputs: 'linear_1')"
UNLABELLED = "(it answers no class scores (no labels)"


@pytest.mark.parametrize(("version", "said"), [("2", RENAMED), ("3", UNLABELLED)])
def test_a_rollout_or_canary_that_drops_what_callers_read_is_refused(
    store: Path, capsys: pytest.CaptureFixture[str], version: str, said: str
) -> None:
    rollout = ("rollout", "m", version, "--metrics", "http://127.0.0.1:30899/metrics")
    for argv in (rollout, ("promote", "m", version, "--weight", "0.3")):
        code, err = _cli(store, capsys, *argv)
        assert code == 1 and said in err, err
        assert f"version {version} of m does not answer as 1 does" in err, err
        assert _production(store) == "1"  # nothing moved
    answer = TestClient(create_app(LocalStore(store))).put(
        "/control/models/m/aliases/production", json={"weights": {"1": 0.7, version: 0.3}}
    )
    assert answer.status_code == 422 and said in answer.json()["error"], answer.text
    assert _production(store) == "1"


def test_the_advice_names_what_to_publish(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The output names first, then how the candidate's exporter sets them: torch's call only
    for a torch export (an skl2onnx pipeline was told `torch.onnx.export(...)`); past 20
    classes where to read the labels, not `--labels A,B,...` (rev11 5)."""
    err = _cli(store, capsys, "rollout", "m", "2")[1]
    assert "): publish it with the baseline's output names ['logits'] (rename its graph's" in err
    assert "torch" not in err, err  # m:2 is no torch export
    err = _cli(store, capsys, "rollout", "m", "3")[1]
    assert f"): publish it with --labels {LABELS} as the baseline was" in err, err
    err = _cli(store, capsys, "promote", "m", "3", "--weight", "0.1")[1]
    assert "as the baseline was, or move every caller to it at once (`aiaas promote m 3`" in err
    model = onnx.load(_classifier(tmp_path / "torch.onnx", "linear_1"))
    model.producer_name = "pytorch"
    onnx.save(model, tmp_path / "torch.onnx")
    argv = ("publish", str(tmp_path / "torch.onnx"), "--name", "m", "--labels", LABELS)
    assert _cli(store, capsys, *argv, "--version", "9")[0] == 0
    err = _cli(store, capsys, "rollout", "m", "9")[1]
    assert "(torch.onnx.export(..., output_names=['logits']))" in err, err
    wide = ",".join(f"c{i}" for i in range(25))
    for version, labels in (("1", ["--labels", wide]), ("2", [])):
        argv = ("publish", str(_wide_classifier(tmp_path / "c.onnx")), "--name", "c", *labels)
        assert _cli(store, capsys, *argv, "--version", version)[0] == 0
    assert _cli(store, capsys, "promote", "c", "1")[0] == 0
    err = _cli(store, capsys, "promote", "c", "2", "--weight", "0.1")[1]
    assert "--labels giving c:1's 25 labels (`aiaas show c:1` lists them)" in err, err


def _wide_classifier(path: Path) -> Path:
    """x float32 [N, 4] -> logits [N, 25]."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["logits"])],
        "wide",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 25])],
        initializer=[numpy_helper.from_array(np.ones((4, 25), np.float32), "W")],
    )
    return onnx_factory.save(graph, path)


def test_what_the_refusal_stands_for_is_what_serving_answers(store: Path) -> None:
    """The candidates' own answers (the predict function, API Gateway v2.0 events) to requests
    production's callers send: `logits` asked by name, `?top_k`; the baseline answers both."""
    pool = ModelPool(Registry(LocalStore(store)), ArtifactCache(LocalStore(store), store / "c"))
    service = service_from_env({"AIAAS_MODEL": "m"}, pool)
    row = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    named = json.dumps({**row, "outputs": [{"name": "logits"}]})
    simple = json.dumps({"inputs": [[1, 2, 3, 4]]})

    def status(path: str, body: str, query: dict[str, str] | None = None) -> int:
        return int(service.handle(http_event("POST", path, body, query=query))["statusCode"])

    assert status("/v2/models/m/versions/1/infer", named) == 200
    assert status("/v2/models/m/versions/2/infer", named) == 422
    assert status("/models/m/versions/1/predict", simple, {"top_k": "2"}) == 200
    assert status("/models/m/versions/3/predict", simple, {"top_k": "2"}) == 400


def test_the_same_answers_a_shadow_or_a_full_promote_are_taken(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _cli(store, capsys, "promote", "m", "4", "--weight", "0.3")
    assert code == 0, err
    assert _cli(store, capsys, "rollback", "m")[0] == 0
    # A shadow's answers reach no caller; a promote without --weight moves every caller.
    code, err = _cli(store, capsys, "shadow", "m", "2", "--sample", "0.5")
    assert code == 0, err
    code, err = _cli(store, capsys, "promote", "m", "3", "--alias", "staging")
    assert code == 0, err


def test_publish_warns_of_an_output_the_version_before_answered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The rollout's refusal is no news at publish: a version answering `linear_1` after one
    answering `logits` (the same inputs) is published with a warning saying what it breaks."""
    root = tmp_path / "store"
    argv = ["--store", str(root), "publish", "--name", "w", "--labels", LABELS]
    assert main([*argv, str(_classifier(tmp_path / "a.onnx", "logits"))]) == 0
    capsys.readouterr()
    assert main([*argv, str(_classifier(tmp_path / "b.onnx", "linear_1"))]) == 0
    out = capsys.readouterr().out
    assert (
        "warning: w:1 answered output 'logits'; this version answers 'linear_1': requests "
        "naming 'logits' get a 422 from it and a rollout or canary from 1 to it is refused; "
        "export it with output_names=['logits'] to answer as before"
    ) in out, out
    assert main([*argv, str(_classifier(tmp_path / "c.onnx", "linear_1"))]) == 0
    assert "warning" not in capsys.readouterr().out  # named as the version before


def test_compare_says_which_version_names_no_classes(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aiaas compare m 1 3` (3: the labels forgotten) said "metrics: none (metrics need one
    value (or one label) a row ...)", not which version lacks them nor what to do."""
    rows = tmp_path / "rows.jsonl"
    lines = [json.dumps({"x": [i, 1.0, -i, 0.5], "label": "dog"}) for i in range(6)]
    rows.write_text("\n".join(lines) + "\n")
    code = main(["--store", str(store), "compare", "m", "1", "3", "--data", str(rows)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert (
        "version 3 names no classes where the other does: publish it with --labels to compare "
        "labels"
    ) in out, out


def _put_weights(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], weights: dict[str, float]
) -> tuple[int, str]:
    """`aiaas invoke ControlPlane` with the real PUT .../aliases/production event: status, body."""
    event = json.loads(Path("events/control/alias_promote.json").read_text())
    path = "/control/models/m/aliases/production"
    event.update(rawPath=path, body=json.dumps({"weights": weights}))
    event["headers"].pop("if-none-match")
    event["headers"]["content-length"] = str(len(event["body"]))
    event["requestContext"]["http"]["path"] = path
    event["pathParameters"]["proxy"] = path.removeprefix("/control/")
    (tmp_path / "put.json").write_text(json.dumps(event))
    assert (
        main(["--store", str(store), "invoke", "ControlPlane", "-e", str(tmp_path / "put.json")])
        == 0
    )
    response = json.loads(capsys.readouterr().out)
    return response["statusCode"], response["body"]


def test_a_shadow_made_the_canary_is_held_to_the_same_answers(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aiaas shadow m 2`, then `promote m 2 --weight 0.1` (or the weights PUT): the shadow was
    never 'added', so its answers went unchecked and 10% of the callers naming `logits` got a
    422 (rev11 1)."""
    for version, said in (("2", RENAMED), ("3", UNLABELLED)):
        assert _cli(store, capsys, "shadow", "m", version)[0] == 0
        code, err = _cli(store, capsys, "promote", "m", version, "--weight", "0.1")
        assert code == 1 and said in err, err
        assert f"version {version} of m does not answer as 1 does" in err, err
        status, body = _put_weights(store, tmp_path, capsys, {"1": 0.9, version: 0.1})
        assert status == 422 and said in body, body
        assert _production(store) == f"1, shadow {version} (100% sampled)"
    assert _cli(store, capsys, "shadow", "m", "4")[0] == 0
    code, err = _cli(store, capsys, "promote", "m", "4", "--weight", "0.1")
    assert code == 0, err  # the same answers: taken


def test_a_split_that_replaces_the_main_version_is_checked_against_it(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`{"2": 0.9, "4": 0.1}` on an alias serving 1 makes 2 the main version: it answered 90% of
    1's callers unchecked, for answers and inputs (rev11 2); checked against 1 now."""
    wide = tmp_path / "wide.onnx"
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["logits"])],
        "wide",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(np.ones((5, 3), np.float32), "W")],
    )
    argv = ("publish", str(onnx_factory.save(graph, wide)), "--name", "m", "--version", "5")
    assert _cli(store, capsys, *argv, "--labels", LABELS)[0] == 0
    for version, said in (("2", RENAMED), ("3", UNLABELLED), ("5", "does not take the requests 1")):
        status, body = _put_weights(store, tmp_path, capsys, {version: 0.9, "4": 0.1})
        assert status == 422 and said in body and f"version {version} of m" in body, body
        assert _production(store) == "1"
    status, body = _put_weights(store, tmp_path, capsys, {"4": 0.9, "2": 0.1})
    assert status == 422 and RENAMED in body, body  # the canary too, against 1
    argv = ("publish", str(tmp_path / "logits.onnx"), "--name", "m", "--version", "6")
    assert _cli(store, capsys, *argv, "--labels", LABELS)[0] == 0
    status, body = _put_weights(store, tmp_path, capsys, {"6": 0.9, "4": 0.1})
    assert status == 200, body  # both answer as 1 does
    assert _production(store) == "6 (90%) + 4 (10%)"
