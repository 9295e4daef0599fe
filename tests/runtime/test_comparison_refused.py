"""`aiaas compare` of versions that refuse rows (a node fails on their values): each refused
row is reported with its line and which version refused it, and every other row is compared.

Real models: scikit-learn's Pipeline of a ColumnTransformer whose OneHotEncoder keeps its default
handle_unknown='error' (wine:1, refuses a category its fit never saw) and the same pipeline with
handle_unknown='ignore' (wine:2, answers it), both exported by skl2onnx and published by
`aiaas publish`. Before, onnxruntime's failure for one row made the whole batch one error entry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from onnx import TensorProto, helper
from sklearn.datasets import load_wine

from functions.runtime.cache import ArtifactCache
from functions.runtime.comparison.run import CompareRequest, compare_versions
from functions.runtime.errors import InvalidInput
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.functions.test_batch_refused_rows import UNKNOWN
from tests.onnx_factory import identity, manifest_for
from tests.sklearn_models import region_frame, region_pipeline

UNSEEN = (3, 7)  # rows (of 12) whose region is one the fit never saw: lines 5 and 9


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, Path, Any]:
    """wine:1 refuses an unseen region, wine:2 answers it; rows.csv: 12 rows of all three
    classes with their `y`, two of them in region 'west'; (store, rows.csv, the frame)."""
    work = tmp_path_factory.mktemp("refused")
    store = LocalStore(work / "store")
    for version, handling in (("1", "error"), ("2", "ignore")):
        path = work / f"region-{handling}.onnx"
        path.write_bytes(region_pipeline(handling)[1])
        args = ["--store", store.uri, "publish", str(path), "--name", "wine"]
        assert main([*args, "--version", version]) == 0
    frame = region_frame(len(load_wine().target)).iloc[::15].reset_index(drop=True)
    frame["y"] = load_wine().target[::15]
    frame.loc[list(UNSEEN), "region"] = "west"
    frame.to_csv(work / "rows.csv", index=False)
    return store, work / "rows.csv", frame


def cli_report(store: LocalStore, rows: Path, a: str, b: str, capsys: Any) -> dict[str, Any]:
    argv = ["--store", store.uri, "compare", "wine", a, b, "--data", str(rows), "--label", "y"]
    assert main([*argv, "--no-progress", "--json"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def test_a_row_one_version_refuses_is_reported_as_its_and_the_others_compared(
    published: tuple[LocalStore, Path, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    store, rows, frame = published
    pipeline = region_pipeline()[0]
    good = frame.drop(index=list(UNSEEN))
    report = cli_report(store, rows, "1", "2", capsys)
    assert report["rows"] == {
        "compared": 10,
        "failed": 2,
        "truncated": False,
        "refused": {"a": 2, "b": 0, "both": 0},
    }
    assert report["errors"] == [
        {
            "line": row + 2,  # the header is line 1
            "reason": f"version 1 (A) refused this row and 2 (B) answered it: {UNKNOWN}",
            "refused_by": "a",
        }
        for row in UNSEEN
    ]
    expected = pipeline.predict(good.drop(columns="y"))
    accuracy = float((expected == good["y"].to_numpy()).mean())
    assert report["agreement"] == {"rows": 10, "agreed": 10, "rate": 1.0, "by": "name"}
    assert report["metrics"]["rows"] == 10
    assert report["metrics"]["a"]["accuracy"] == pytest.approx(accuracy)
    assert report["metrics"]["b"]["accuracy"] == pytest.approx(accuracy)
    assert report["latency"]["a"]["calls"] == 10  # refused rows are not timed (they would fail)

    swapped = cli_report(store, rows, "2", "1", capsys)
    assert swapped["rows"]["refused"] == {"a": 0, "b": 2, "both": 0}
    assert swapped["errors"][0] == {
        "line": 5,
        "reason": f"version 1 (B) refused this row and 2 (A) answered it: {UNKNOWN}",
        "refused_by": "b",
    }


def test_rows_both_versions_refuse_are_counted_as_both_s(
    published: tuple[LocalStore, Path, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    store, rows, _ = published
    argv = ["--store", store.uri, "compare", "wine", "1", "1", "--data", str(rows)]
    assert main([*argv, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert ": 10 rows compared, 2 not" in out
    assert "refused by a version, not compared: 0 by A only, 0 by B only, 2 by both" in out
    assert f"  ! line 5: versions 1 (A) and 1 (B) both refused this row: {UNKNOWN}" in out


def test_a_version_that_refuses_every_row_of_the_first_batch_fails_the_comparison(
    published: tuple[LocalStore, Path, Any], tmp_path: Path
) -> None:
    store, _, frame = published
    west = frame.assign(region="west").drop(columns="y")
    store.put_bytes("batch/wine/input/west.csv", west.to_csv(index=False).encode())
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    with pytest.raises(InvalidInput, match=r"^model wine:1 refused every one of the 12 rows"):
        compare_versions(pool, CompareRequest("wine", "2", "1", "batch/wine/input/west.csv"))


def test_a_captured_request_is_refused_whole_saying_which_version(
    published: tuple[LocalStore, Path, Any], tmp_path: Path
) -> None:
    store, _, frame = published
    lines = [
        {
            "route": "predict",
            "request": {"instances": frame.drop(columns="y")[i : i + 2].to_dict("records")},
        }
        for i in (0, 2, 4)  # rows 3 (unseen) is in the second request, line 2
    ]
    body = "\n".join(json.dumps(line, default=float) for line in lines) + "\n"
    store.put_bytes("capture/wine/1/2026-12-01/c.jsonl", body.encode())
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    report = compare_versions(
        pool, CompareRequest("wine", "1", "2", "capture/wine/1/2026-12-01/c.jsonl")
    )
    assert report["rows"]["compared"] == 4 and report["rows"]["refused"]["a"] == 1
    assert report["errors"] == [
        {
            "line": 2,
            "reason": f"version 1 (A) refused this request and 2 (B) answered it: {UNKNOWN}",
            "refused_by": "a",
        }
    ]


def test_a_row_b_answers_nan_for_is_reported_at_its_own_line(tmp_path: Path) -> None:
    """m:1 y = x, m:2 y = log(x): the row x = -1 (line 4, after a blank line) is refused by 2.
    Its line was the batch's first line plus its index (the header's 1 + 1 = line 2)."""
    registry = Registry(LocalStore(tmp_path / "store"))
    first = identity(tmp_path / "a.onnx", shape=["N", 1])
    registry.publish(manifest_for(first, "m", "1"), first)
    graph = helper.make_graph(
        [helper.make_node("Log", ["x"], ["y"])],
        "log",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
    )
    second = onnx_factory.save(graph, tmp_path / "b.onnx")
    registry.publish(manifest_for(second, "m", "2"), second)
    registry.store.put_bytes("batch/m/input/rows.csv", b"x\n1\n\n-1\n2\n")
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"))
    report = compare_versions(pool, CompareRequest("m", "1", "2", "batch/m/input/rows.csv"))
    assert report["rows"]["compared"] == 2
    assert [e["line"] for e in report["errors"]] == [4]
    # Refused by B as predict refuses a NaN answer (it was "incomparable: ... of the shadow").
    assert report["errors"][0]["reason"].startswith("version 2 (B) refused this row")
    assert report["rows"]["refused"] == {"a": 0, "b": 1, "both": 0}
