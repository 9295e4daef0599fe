"""What an operator finds of one failed request in `aiaas serve`'s JSON lines. As deployed
(`AIAAS_LOG_REQUESTS` off, as template.yaml leaves it): the 5xx's ERROR line names the model,
the version that answered (a canary's or the stable one's: one function, one log group), the
route, the status and the id the caller was given in `apigw-requestid`, never the body. With
request lines: every answer the server gives itself (a token refused, no route, a body too big,
too slow or cut) has its line with that id, and is counted in `aiaas_requests_total`."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

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
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`m@production` split between 1 (answers) and 2 (fails on an odd number of rows, as a
    model traced with a fixed batch does)."""
    root = tmp_path_factory.mktemp("error_lines")
    store = root / "store"
    assert publish(store, onnx_factory.identity(root / "good.onnx", shape=["N", 4]), "m")[0] == 0
    assert publish(store, onnx_factory.even_rows(root / "evens.onnx"), "m")[0] == 0
    Registry(LocalStore(store)).set_alias_weights("m", "production", {"1": 0.5, "2": 0.5})
    return store


ENV = {"AIAAS_LOG_FORMAT": "json", "AIAAS_API_TOKEN": TOKEN, "POWERTOOLS_LOG_LEVEL": "INFO"}


@pytest.fixture(scope="module")
def canary(store: Path) -> Iterator[ServeProcess]:
    yield from start_serve(store, env=ENV, headers=AUTH)


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
    # onnxruntime's whole text, the same at each failure: once, not a WARNING a request
    details = [
        line for line in _lines(canary) if "m:2 failed on 1 validated" in str(line["message"])
    ]
    assert len(details) == 1 and details[0]["level"] == "WARNING"
    text = canary.log.read_text()
    assert "alice@example.com" not in text and TOKEN not in text


def _raw(server: ServeProcess, head: bytes, body: bytes, *, close: bool = False) -> tuple[int, str]:
    """(status, apigw-requestid) of a request written as is; `close`: the write side closed
    after it (a client that stopped sending)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + body)
        if close:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
    lines = answer.split(b"\r\n\r\n")[0].decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers["apigw-requestid"]


def test_each_answer_the_server_gives_itself_has_a_line_with_the_callers_id_and_counts(
    store: Path,
) -> None:
    env = {**ENV, "AIAAS_LOG_REQUESTS": "1"}
    servers = start_serve(store, "--body-timeout", "1", env=env, headers=AUTH)
    server = next(servers)
    try:
        predict = f"POST /models/m/predict HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}"
        sized = f"{predict}\r\ncontent-length: 100\r\n\r\n".encode()
        # Over the 10 MiB API Gateway limit, declared: refused at once. 11 MiB sent chunked had
        # to arrive within the 1 s body timeout: under load it did not (a 408, then a reset).
        over = f"{predict}\r\ncontent-length: {11 * 1024 * 1024}\r\n\r\n".encode()
        with httpx.Client(base_url=server.base, timeout=30) as http:
            wrong = http.post(
                "/models/m/predict", json=SECRET_ROW, headers={"Authorization": "Bearer x"}
            )
            missing = http.post("/models/nope/predict", json=SECRET_ROW, headers=AUTH)
            answers = [(r.status_code, r.headers["apigw-requestid"]) for r in (wrong, missing)]
            answers.append(_raw(server, sized, b'{"inputs"'))  # never finished: 408
            answers.append(_raw(server, sized, b'{"inputs"', close=True))  # cut: 400
            answers.append(_raw(server, over, b""))  # 413
            scraped = http.get("/metrics", headers=AUTH).text
    finally:
        next(servers, None)
    assert [status for status, _ in answers] == [401, 404, 408, 400, 413]
    lines = [line for line in _lines(server) if line["message"] == "request"]
    assert [(line["status"], line["request_id"]) for line in lines] == answers
    assert all(line["model"] == line["version"] == line["route"] == "-" for line in lines)
    (requests,) = [f for f in text_string_to_metric_families(scraped) if f.name == "aiaas_requests"]
    counted = {
        s.labels["status_class"]: s.value for s in requests.samples if s.name.endswith("_total")
    }
    assert counted == {"4xx": 5}
    assert TOKEN not in server.log.read_text()


def _shadow_copies(http: httpx.Client) -> float:
    """Copies the shadow replayed or failed on, as /metrics has them."""
    families = text_string_to_metric_families(http.get("/metrics").text)
    wanted = {"aiaas_shadow_requests", "aiaas_shadow_errors"}
    return sum(s.value for f in families if f.name in wanted for s in f.samples)


def test_a_failing_shadow_says_each_reason_once_with_the_copys_request_id(
    tmp_path: Path,
) -> None:
    """A shadow that fails every copy wrote a WARNING a copy: 200 lines a second in the
    shadow function's log group at --sample 0.2 and 500 requests a second."""
    store = tmp_path / "store"
    assert publish(store, onnx_factory.identity(tmp_path / "a.onnx", shape=["N", 4]), "s")[0] == 0
    assert publish(store, onnx_factory.even_rows(tmp_path / "b.onnx"), "s")[0] == 0
    registry = Registry(LocalStore(store))
    registry.set_alias("s", "production", "1")
    registry.set_shadow("s", "production", "2", 1.0)
    servers = start_serve(store, env=ENV, headers=AUTH)
    server = next(servers)
    one, two = {"inputs": [[1.0, 2.0, 3.0, 4.0]]}, {"inputs": [[1.0, 2.0, 3.0, 4.0]] * 2}
    try:
        with httpx.Client(base_url=server.base, headers=AUTH, timeout=30) as http:
            sent = [http.post("/models/s/predict", json=one) for _ in range(12)]
            sent.append(http.post("/models/s/predict", json=two))  # the shadow answers it
            sent += [http.post("/models/s/predict", json=one) for _ in range(3)]
            assert all(answer.status_code == 200 for answer in sent)
            deadline = time.monotonic() + 30
            while _shadow_copies(http) < len(sent) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _shadow_copies(http) == len(sent)
    finally:
        next(servers, None)
    said = [line for line in _lines(server) if str(line["message"]).startswith("shadow 2 of s:1")]
    ids = [answer.headers["apigw-requestid"] for answer in sent]
    assert [(line["level"], line.get("request_id")) for line in said] == [
        ("WARNING", ids[0]),
        ("INFO", None),
        ("WARNING", ids[13]),
    ]
    assert "the model failed: Reshape" in str(said[0]["message"])
    assert (
        said[1]["message"] == "shadow 2 of s:1 answers again (12 copies failed since it was said)"
    )
    assert (said[0]["model"], said[0]["version"], said[0]["shadow_version"]) == ("s", "1", "2")


TRACE = "4bf92f3577b34da6a3ce929b0e0e4736"


def test_the_callers_own_ids_are_on_its_lines_when_they_look_like_ids(store: Path) -> None:
    """An nginx ingress's X-Request-ID (what its access log holds) and a traceparent's trace id
    join the caller's logs with ours; they were on no line."""
    servers = start_serve(store, env={**ENV, "AIAAS_LOG_REQUESTS": "1"}, headers=AUTH)
    server = next(servers)
    sent: dict[str, str] = {}  # apigw-requestid -> the caller's id
    try:
        with httpx.Client(base_url=server.base, timeout=30) as http:
            for i in range(8):
                ids = {
                    "x-request-id": f"ingress-{i}",
                    "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01",
                }
                answer = http.post("/models/m/predict", json=SECRET_ROW, headers={**AUTH, **ids})
                sent[answer.headers["apigw-requestid"]] = f"ingress-{i}"
            refused = http.post("/models/m/predict", headers={"x-request-id": "ingress-401"})
            sent[refused.headers["apigw-requestid"]] = "ingress-401"
            bad = {"x-request-id": "x" * 129, "traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"}
            ignored = http.post("/models/m/predict", json=SECRET_ROW, headers={**AUTH, **bad})
    finally:
        next(servers, None)
    lines = [
        line for line in _lines(server) if line["level"] == "ERROR" or line["message"] == "request"
    ]
    assert any(line["level"] == "ERROR" for line in lines)  # the canary's 500s carry them too
    for line in lines:
        rid = str(line["request_id"])
        if rid == ignored.headers["apigw-requestid"]:
            assert "caller_request_id" not in line and "trace_id" not in line
            continue
        assert line["caller_request_id"] == sent[rid]
        assert line.get("trace_id") == (None if sent[rid] == "ingress-401" else TRACE)
    assert len([line for line in lines if line["message"] == "request"]) == 10
