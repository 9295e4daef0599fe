"""What a real `aiaas serve` writes to the capture store, over real HTTP: a denied OIP `id` is
in neither the captured request nor the captured answer (which echoes it), the lines of a
burst reach the store within about a second with no request after them, and each captured
line's `request_id` is the `apigw-requestid` header the caller was answered with."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from functions.runtime.aside import long_lived
from functions.runtime.capture.reader import captured_lines
from functions.runtime.store import LocalStore
from tests.infra.test_serve import TOKEN, ServeProcess, start_serve
from tests.infra.test_serve_capture_metrics import churn_store

MODEL = "churn"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PREDICT = f"/models/{MODEL}/predict"
INFER = f"/v2/models/{MODEL}/infer"
SECRET = "customer-4711@example.com"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return churn_store(tmp_path, ("a", "b", "c", "email"), deny=["id", "email"])


@pytest.fixture
def server(store: Path) -> Iterator[ServeProcess]:
    yield from start_serve(store, env={"AIAAS_API_TOKEN": TOKEN}, headers=AUTH)


@pytest.fixture
def client(server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, headers=AUTH, timeout=30) as client:
        yield client


def lines_within(store: Path, count: int, seconds: float) -> list[dict[str, Any]]:
    """The captured lines once `count` are in the store; fails past `seconds`."""
    deadline = time.monotonic() + seconds
    while len(found := list(captured_lines(LocalStore(store), MODEL))) < count:
        assert time.monotonic() < deadline, f"{len(found)} of {count} lines within {seconds} s"
        time.sleep(0.05)
    return found


def infer_body(correlation: str) -> dict[str, Any]:
    tensor = {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
    return {"id": correlation, "inputs": [tensor]}


def test_a_denied_oip_id_is_captured_neither_in_the_request_nor_in_its_echo(
    store: Path, client: httpx.Client
) -> None:
    answer = client.post(INFER, json=infer_body(SECRET))
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == SECRET  # the caller still gets its id back
    (line,) = lines_within(store, 1, 10)
    assert "id" not in line["request"] and "id" not in line["response"]
    assert line["response"] == {k: v for k, v in answer.json().items() if k != "id"}
    raw = b"".join(p.read_bytes() for p in (store / "capture").rglob("*.jsonl"))
    assert SECRET.encode() not in raw


def test_the_lines_of_a_burst_are_written_with_no_request_after_it(
    store: Path, client: httpx.Client
) -> None:
    """A burst, then quiet: the lines held were written only at that model's next request
    (hours later, or never on a kill -9), out of `aiaas capture export`'s reach meanwhile."""
    for i in range(5):
        answer = client.post(PREDICT, json={"inputs": [[i, 1.0, 2.0, 3.0]]})
        assert answer.status_code == 200, answer.text
    found = lines_within(store, 5, 5)  # the hold is a second: 5 s for a loaded machine
    assert sorted(line["request"]["inputs"][0][0] for line in found) == list(range(5))


def test_only_a_long_lived_server_writes_held_lines_on_a_timer() -> None:
    """Lambda freezes a container once its handler returns: no timer there (the docs' rule)."""
    assert not long_lived({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"})
    assert long_lived({})


def test_each_answer_carries_the_request_id_its_captured_line_holds(
    store: Path, server: ServeProcess, client: httpx.Client
) -> None:
    sent = {}
    for i in range(3):
        answer = client.post(PREDICT, json={"inputs": [[i, 1.0, 2.0, 3.0]]})
        assert answer.status_code == 200, answer.text
        sent[answer.headers["apigw-requestid"]] = i
    answer = client.post(INFER, json=infer_body("mine"))
    sent[answer.headers["apigw-requestid"]] = -1
    found = lines_within(store, 4, 5)
    held = {line["request_id"]: line["request"]["inputs"] for line in found}
    assert {rid: i for rid, i in sent.items() if i >= 0} == {
        rid: inputs[0][0] for rid, inputs in held.items() if isinstance(inputs[0], list)
    }
    assert set(held) == set(sent)
    # Every answer carries one, a refusal before any function ran too, each its own.
    refused = httpx.post(f"{server.base}{PREDICT}", json={"inputs": [[1, 2, 3, 4]]})
    unknown = client.get("/models/nope/metadata")
    assert (refused.status_code, unknown.status_code) == (401, 404)
    ids = {refused.headers["apigw-requestid"], unknown.headers["apigw-requestid"], *sent}
    assert len(ids) == len(sent) + 2
