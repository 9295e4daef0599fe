"""The control plane's compare has a time budget (`AIAAS_COMPARE_MAX_SECONDS`, or the Lambda
invocation's time left): refused up front with the numbers, stopped at the deadline with an
answer, never run into the function's timeout; `aiaas compare` has none and shows progress.

A tiny budget set through the environment stands in for a big file: the tests take seconds.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.control.compare_api import ANSWER_MARGIN_S, time_budget
from functions.runtime.comparison.budget import CompareBudget, CompareTooLong
from functions.runtime.comparison.run import CompareRequest, compare_versions
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from infra.cli.row_progress import Progress
from infra.local.functions import LambdaContext, load_handler
from tests.publishing import publish_linear

KEY = "batch/digits-mlp/input/held.csv"
EVENT = Path(__file__).resolve().parents[2] / "events" / "control" / "compare.json"
ROWS = 60


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    root = tmp_path_factory.mktemp("compare-budget")
    found = LocalStore(root / "store")
    registry = Registry(found)
    for version in ("1", "2"):
        publish_linear(registry, root, "digits-mlp", version, seed=int(version))
    x = np.random.default_rng(3).normal(size=(ROWS, 4))
    lines = ["x_0,x_1,x_2,x_3,y"] + [
        ",".join(map(str, row)) + "," + "abc"[i % 3] for i, row in enumerate(x.tolist())
    ]
    found.put_bytes(KEY, ("\n".join(lines) + "\n").encode())
    found.put_bytes("batch/digits-mlp/input/header.csv", b"x_0,x_1,x_2,x_3,y\n")
    return found


@pytest.fixture(scope="module")
def tiny(store: LocalStore) -> Iterator[TestClient]:
    """The real app, its budget configured to a microsecond: every comparison is over it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIAAS_COMPARE_MAX_SECONDS", "0.000001")
        app = create_app(store)
    with TestClient(app) as client:
        yield client


def test_a_comparison_over_the_budget_is_a_422_with_the_numbers_and_what_to_do(
    tiny: TestClient,
) -> None:
    response = tiny.post(
        "/control/models/digits-mlp/compare", json={"a": "1", "b": "2", "data": KEY}
    )
    assert response.status_code == 422, response.text
    said = response.json()["error"]
    assert said.startswith("this comparison would take about ")
    assert f"{ROWS:,} rows to score with both versions at " in said  # the file's rows, estimated
    assert (
        "latency calls at " in said and "the limit is 1e-06 s (AIAAS_COMPARE_MAX_SECONDS)" in said
    )
    assert f"run `aiaas compare digits-mlp 1 2 --data {KEY}` instead" in said


def test_the_cli_has_no_limit_on_the_same_file(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIAAS_COMPARE_MAX_SECONDS", "0.000001")
    argv = ["--store", str(store.root), "compare", "digits-mlp", "1", "2", "--data", KEY, "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["rows"]["compared"] == ROWS


def test_within_the_budget_it_compares_and_stops_at_max_rows_exactly(store: LocalStore) -> None:
    with TestClient(create_app(store)) as client:  # the default budget, 20 s
        body = {"a": "1", "b": "2", "data": KEY, "max_rows": 25}
        response = client.post("/control/models/digits-mlp/compare", json=body)
        assert response.status_code == 200, response.text
        # It compared the whole first batch (60 rows) and called that "at most 25".
        assert response.json()["rows"] == {
            "compared": 25,
            "failed": 0,
            "truncated": True,
            "refused": {"a": 0, "b": 0, "both": 0},
        }
        empty = {"a": "1", "b": "2", "data": "batch/digits-mlp/input/header.csv"}
        response = client.post("/control/models/digits-mlp/compare", json=empty)
    assert response.status_code == 422
    assert response.json() == {
        "error": "batch/digits-mlp/input/header.csv: the file holds no rows to compare (a header at most)"
    }


def test_a_comparison_slower_than_its_probe_is_stopped_at_the_deadline(store: LocalStore) -> None:
    budget = CompareBudget(20.0)

    def aged(rows: int) -> None:  # each batch "takes" 15 s: the second crosses the deadline
        budget.started -= 15.0

    request = CompareRequest("digits-mlp", "1", "2", KEY, chunk_rows=20)
    with pytest.raises(CompareTooLong) as raised:
        compare_versions(ModelPool(Registry(store)), request, budget=budget, progress=aged)
    said = raised.value.message
    assert raised.value.status == 422
    assert said.startswith("this comparison was stopped after 30.0 s with 39 of about 60 rows")
    assert (
        "the limit is 20 s (AIAAS_COMPARE_MAX_SECONDS): compare fewer rows (max_rows 19 fits"
        in said
    )


def test_the_lambda_handler_answers_within_the_invocation_time_left(store: LocalStore) -> None:
    """The golden event through `functions.control.handler.handler`, as Lambda runs it: with
    30 s it compares; with 2 s (all of it the margin to answer in) it refuses, saying why."""
    handler = load_handler("functions.control.handler.handler", {"AIAAS_STORE": store.uri})
    event: dict[str, Any] = json.loads(EVENT.read_text())
    answer = handler(event, LambdaContext("ControlPlane", timeout_s=30.0))
    assert answer["statusCode"] == 200, answer["body"]
    assert json.loads(answer["body"])["metrics"]["rows"] == ROWS
    answer = handler(event, LambdaContext("ControlPlane", timeout_s=2.0))
    assert answer["statusCode"] == 422, answer["body"]
    said = json.loads(answer["body"])["error"]
    assert said.startswith("this comparison would take about ")
    assert "the limit is 0 s (the control function's time left, 2.0 s, less 2 s to answer; " in said
    assert "AIAAS_COMPARE_MAX_SECONDS is 20 s)" in said


def test_a_lambda_invocation_with_less_time_left_sets_a_shorter_budget() -> None:
    assert time_budget(20.0, None).seconds == 20.0  # `aiaas serve` without a template, tests
    roomy = LambdaContext("control", timeout_s=30.0)
    assert time_budget(20.0, roomy).seconds == 20.0
    late = LambdaContext("control", timeout_s=10.0)
    budget = time_budget(20.0, late)
    assert 10.0 - ANSWER_MARGIN_S - 0.5 < budget.seconds <= 10.0 - ANSWER_MARGIN_S
    assert budget.source.startswith("the control function's time left, 10.0 s, less 2 s")


def test_the_cli_progress_line_shows_only_for_a_long_run() -> None:
    now = [0.0]
    out = io.StringIO()  # not a terminal: plain lines, one every 30 s
    clock = lambda: now[0]  # noqa: E731
    with Progress(
        "m 1 vs 2", 100_000, verb="compared", bound=True, stream=out, clock=clock
    ) as shown:
        shown(4096)
        assert out.getvalue() == ""  # under 2 s: a quick comparison prints its report alone
        now[0] = 4.0
        shown(8192)
        now[0] = 5.0
        shown(12288)  # within 30 s of the last line: nothing
    lines = out.getvalue().splitlines()
    assert lines == [
        "m 1 vs 2: 8,192 rows compared (at most 100,000), 2,048 rows/s, 4.0 s",
        "m 1 vs 2: 12,288 rows compared (at most 100,000), 2,458 rows/s, 5.0 s",
    ]


def test_the_control_plane_times_as_many_calls_as_the_cli(
    store: LocalStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """The budget's probe timed 8 calls on the first batch and none of its other rows: a
    60-row file gave "calls": 8 a version where `aiaas compare` times 60 (ctl2 hunt)."""
    with TestClient(create_app(store)) as client:
        url, body = "/control/models/digits-mlp/compare", {"a": "1", "b": "2", "data": KEY}
        served = [client.post(url, json={**body, "latency_calls": n}).json() for n in (500, 30)]
    argv = ["--store", str(store.root), "compare", "digits-mlp", "1", "2", "--data", KEY]
    assert main([*argv, "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)["latency"]
    assert [cli[v]["calls"] for v in ("a", "b")] == [ROWS, ROWS]
    assert [served[0]["latency"][v]["calls"] for v in ("a", "b")] == [ROWS, ROWS]
    assert [served[1]["latency"][v]["calls"] for v in ("a", "b")] == [30, 30]
