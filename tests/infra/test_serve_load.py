"""1,000 concurrent requests through `aiaas serve --workers 2`, on loopback: zero errors.

A mix of both protocols (simple JSON, OIP JSON, OIP binary, metadata, readiness) from 64
connections (threads) at once; every answer is checked against onnxruntime, not just its status.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.functions.test_predict_events import MODEL, publish_digits, reference_logits
from tests.infra.test_serve import ServeProcess, start_serve

REQUESTS = 1000
CONNECTIONS = 64
ROWS = np.random.default_rng(7).normal(size=(REQUESTS, 64)).astype(np.float32)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("load")
    publish_digits(root)
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServeProcess]:
    yield from start_serve(root / "store", "--workers", "2")


def call(i: int) -> tuple[str, str, dict[str, Any]]:
    """The i-th request: (method, path, httpx keyword arguments)."""
    row = ROWS[i : i + 1]
    kind = i % 5
    if kind == 0:
        return "POST", f"/models/{MODEL}/predict", {"json": {"inputs": row.tolist()}}
    if kind == 1:
        tensor = {"name": "x", "shape": [1, 64], "datatype": "FP32", "data": row.ravel().tolist()}
        return "POST", f"/v2/models/{MODEL}/infer", {"json": {"inputs": [tensor]}}
    if kind == 2:
        head = json.dumps(
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [1, 64],
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": 256},
                    }
                ],
                "parameters": {"binary_data_output": True},
            }
        ).encode()
        headers = {
            "inference-header-content-length": str(len(head)),
            "content-type": "application/octet-stream",
        }
        return (
            "POST",
            f"/v2/models/{MODEL}/infer",
            {"content": head + row.astype("<f4").tobytes(), "headers": headers},
        )
    if kind == 3:
        return "GET", f"/v2/models/{MODEL}", {}
    return "GET", f"/v2/models/{MODEL}/ready", {}


def logits_of(i: int, answer: httpx.Response) -> np.ndarray | None:
    kind = i % 5
    if kind == 0:
        return np.asarray(answer.json()["outputs"]["logits"])
    if kind == 1:
        return np.asarray(answer.json()["outputs"][0]["data"]).reshape(1, 10)
    if kind == 2:
        length = int(answer.headers["inference-header-content-length"])
        return np.frombuffer(answer.content[length:], "<f4").reshape(1, 10)
    return None


def fire(base: str) -> tuple[list[httpx.Response | BaseException], float]:
    """Every request from CONNECTIONS threads, each with its own keep-alive connection.

    (httpx's AsyncClient queues 1,000 pending requests on its pool slowly enough to dominate
    the run on 2 cores; threads with one Client each keep the client side cheap.)
    """
    local = threading.local()
    clients: list[httpx.Client] = []

    def one(i: int) -> httpx.Response | BaseException:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base, timeout=60)
            clients.append(local.client)
        client: httpx.Client = local.client
        method, path, kwargs = call(i)
        try:
            return client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            return exc

    start = time.perf_counter()
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        answers = list(pool.map(one, range(REQUESTS)))
    seconds = time.perf_counter() - start
    for client in clients:
        client.close()
    return answers, seconds


def test_1000_concurrent_requests_zero_errors(server: ServeProcess, root: Path) -> None:
    answers, seconds = fire(server.base)
    failures = [
        (i, a if isinstance(a, BaseException) else (a.status_code, a.text[:200]))
        for i, a in enumerate(answers)
        if isinstance(a, BaseException) or a.status_code != 200
    ]
    assert failures == [], f"{len(failures)} of {REQUESTS} failed, first: {failures[:3]}"
    expected = reference_logits(root / "mlp.onnx", ROWS)
    for i, answer in enumerate(answers):
        assert isinstance(answer, httpx.Response)
        logits = logits_of(i, answer)
        if logits is not None:
            np.testing.assert_allclose(
                logits, expected[i : i + 1], rtol=1e-5, atol=1e-5, err_msg=f"request {i}"
            )
        elif i % 5 == 4:
            assert answer.json() == {"name": MODEL, "version": "1", "ready": True}
        else:
            assert answer.json()["name"] == MODEL
    print(
        f"\n{REQUESTS} requests over {CONNECTIONS} connections in {seconds:.2f} s ({REQUESTS / seconds:.0f} req/s)"
    )
