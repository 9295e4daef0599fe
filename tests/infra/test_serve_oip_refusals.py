"""OIP refusals over a real `aiaas serve` that answered something else before (hunt_oip.md):

- class_count on a classifier whose rows of scores do not fit its labels answered a 200 ranking
  classes the model does not have, its labels dropped, where /predict refused: now both refuse;
- an invalid class_count on a misspelled output answered the count's 400, so the caller fixed
  the count and only then learnt the name was wrong: now the unknown-output 422 comes first;
- a repeated Inference-Header-Content-Length (joined "140,140", as API Gateway joins it) was
  said to be no integer: now the answer says it was sent twice.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_serve import ServeProcess, start_serve

MISFIT = (
    "wide:1 answered 4 class scores a row but names 3 classes; republish it with aiaas publish "
    "(its scores output or activation does not fit its labels)"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """`wide`: y = x, float [N, W] with W dynamic, published with 3 labels: a row of 3 fits,
    a row of 4 does not (publish cannot know: the width is the caller's)."""
    root = tmp_path_factory.mktemp("oip-refusals")
    path = onnx_factory.identity(root / "wide.onnx", shape=["N", "W"])
    argv = ["--store", str(root / "store"), "publish", str(path), "--name", "wide"]
    options = ["--task", "classification", "--labels", "a,b,c", "--scores-output", "y"]
    assert main([*argv, *options, "--activation", "none", "--no-progress"]) == 0
    yield from start_serve(root / "store")


@pytest.fixture
def client(server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        yield client


def classify(row: list[float], count: Any = 2, output: str = "y") -> dict[str, Any]:
    tensor = {"name": "x", "datatype": "FP32", "shape": [1, len(row)], "data": row}
    return {
        "inputs": [tensor],
        "outputs": [{"name": output, "parameters": {"classification": count}}],
    }


def test_class_count_ranks_rows_that_fit_the_labels(client: httpx.Client) -> None:
    answer = client.post("/v2/models/wide/infer", json=classify([0.2, 0.5, 0.3]))
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == ["0.500000:1:b", "0.300000:2:c"]


def test_class_count_on_rows_that_do_not_fit_the_labels_refuses_as_predict(
    client: httpx.Client,
) -> None:
    # Before: 200 ["0.400000:3", "0.300000:2"], class 3 of a 3-class model, labels dropped.
    answer = client.post("/v2/models/wide/infer", json=classify([0.1, 0.2, 0.3, 0.4]))
    predicted = client.post("/models/wide/predict", json={"inputs": [[0.1, 0.2, 0.3, 0.4]]})
    assert (predicted.status_code, predicted.json()) == (500, {"error": MISFIT})
    assert (answer.status_code, answer.json()) == (500, {"error": MISFIT})


@pytest.mark.parametrize("count", [0, "2", True])
def test_an_invalid_class_count_on_an_unknown_output_is_the_unknown_output_422(
    client: httpx.Client, count: Any
) -> None:
    answer = client.post("/v2/models/wide/infer", json=classify([1, 2, 3], count, "probs"))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"].startswith("unknown output 'probs'; this model has outputs")
    answer = client.post("/v2/models/wide/infer", json=classify([1, 2, 3], count))  # a known one
    assert answer.status_code == 400, answer.text
    assert "parameter 'classification' (class_count) must be" in answer.json()["error"]


def raw_post(server: ServeProcess, path: str, headers: list[tuple[str, str]], body: bytes) -> str:
    """The status line and body of a POST sent byte for byte (an HTTP client folds or refuses
    a repeated header; a raw socket sends it twice, as a proxy may)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {len(body)}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, content = reply.partition(b"\r\n\r\n")
    status = head.split(b"\r\n")[0]
    return f"{status.decode()} {content.decode()}"


@pytest.mark.parametrize("second", ["140", "0"])
def test_a_repeated_header_length_says_it_was_sent_twice(server: ServeProcess, second: str) -> None:
    body = json.dumps(classify([1, 2, 3])).encode()
    length = "Inference-Header-Content-Length"
    headers = [(length, str(len(body))), (length, second)]
    answer = raw_post(server, "/v2/models/wide/infer", headers, body)
    assert answer == (
        'HTTP/1.1 400 Bad Request {"error":"Inference-Header-Content-Length was sent more than '
        f"once ({len(body)},{second}): send it once, with the JSON header's length in bytes\"}}"
    )
