"""What an operator finds of one failed request in `aiaas serve`'s JSON lines, as deployed
(`AIAAS_LOG_REQUESTS` off, as template.yaml leaves it): the 5xx's ERROR line names the model,
the version that answered (a canary's or the stable one's: one function, one log group), the
route, the status and the id the caller was given in `apigw-requestid`, never the body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_hostile_graphs import publish
from tests.infra.test_serve import TOKEN, ServeProcess, start_serve

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET_ROW = {"inputs": [[1.0, 2.0, 3.0, 4.0]], "email": "alice@example.com"}


def _lines(server: ServeProcess) -> list[dict[str, object]]:
    return [json.loads(line) for line in server.log.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """`m@production` split between 1 (answers) and 2 (fails on an odd number of rows, as a
    model traced with a fixed batch does)."""
    root = tmp_path_factory.mktemp("error_lines")
    store = root / "store"
    assert publish(store, onnx_factory.identity(root / "good.onnx", shape=["N", 4]), "m")[0] == 0
    assert publish(store, onnx_factory.even_rows(root / "evens.onnx"), "m")[0] == 0
    Registry(LocalStore(store)).set_alias_weights("m", "production", {"1": 0.5, "2": 0.5})
    env = {"AIAAS_LOG_FORMAT": "json", "AIAAS_API_TOKEN": TOKEN, "POWERTOOLS_LOG_LEVEL": "INFO"}
    yield from start_serve(store, env=env, headers=AUTH)


def test_a_canarys_5xx_line_names_the_version_route_status_and_the_callers_id(
    canary: ServeProcess,
) -> None:
    failed: set[str] = set()
    with httpx.Client(base_url=canary.base, headers=AUTH, timeout=30) as http:
        for _ in range(24):  # each 1 in 2 to version 2: none failing is 2**-24
            answer = http.post("/models/m/predict", json=SECRET_ROW)
            assert answer.status_code in (200, 500), answer.text
            if answer.status_code == 500:
                assert answer.headers["x-aiaas-version"] == "2"
                failed.add(answer.headers["apigw-requestid"])
    assert failed
    errors = [line for line in _lines(canary) if line["level"] == "ERROR"]
    assert len(errors) == len(failed)  # one line a failed request
    for line in errors:
        assert str(line["message"]).startswith("request failed: the model failed: Reshape")
        assert line["model"] == "m" and line["version"] == "2" and line["status"] == 500
        assert line["route"] == "POST /models/{name}/predict"
    assert {line["request_id"] for line in errors} == failed
    text = canary.log.read_text()
    assert "alice@example.com" not in text and TOKEN not in text
