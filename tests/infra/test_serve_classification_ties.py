"""Ties among a classifier's best classes, asked by tritonclient's `class_count` of a real
`aiaas serve`, for models with class scores but no label output to settle them (a network's
logits published with --activation): the lower index first (docs/oip.md), whether the request
is ranked in Python (a few rows) or numpy (over SMALL cells), in JSON and binary, and the same
class as predict's label and `top_k`. Ties are of the scores served, the probabilities: logits
a sigmoid saturates to 1.0 tie too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton  # a dev dependency: a missing client fails, never skips

from functions.runtime.codecs.oip_classification import SMALL
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_serve import start_serve

# Logits (the identity model answers its input) and each row's classes, best first.
TIED = {
    (1.0, 1.0, 0.0): [0, 1, 2],
    (0.0, 1.0, 1.0): [1, 2, 0],
    (2.0, 2.0, 2.0): [0, 1, 2],
    (3.0, -1.0, 3.0): [0, 2, 1],
    (0.5, 0.0, 0.0): [0, 1, 2],
}
REPEAT = SMALL // 5  # the rows tiled past SMALL cells: numpy ranks them


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("classification-ties")
    store = LocalStore(root / "store")
    three = onnx_factory.identity(root / "three.onnx")
    one = onnx_factory.identity(root / "one.onnx", shape=["N", 1])
    publish = ["--store", store.uri, "publish"]
    logits = ["--task", "classification", "--scores-output", "y"]  # no labels, no label output
    assert main([*publish, str(three), "--name", "soft", *logits, "--activation", "softmax"]) == 0
    assert main([*publish, str(three), "--name", "sig", *logits, "--activation", "sigmoid"]) == 0
    assert main([*publish, str(one), "--name", "logit", "--labels", "no,yes"]) == 0
    for served in start_serve(store.root):
        yield f"127.0.0.1:{served.port}"


def classes(address: str, model: str, rows: np.ndarray, binary: bool, count: int = 3) -> list[Any]:
    client = triton.InferenceServerClient(address, connection_timeout=10, network_timeout=30)
    try:
        tensor = triton.InferInput("x", list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows, binary_data=binary)
        wanted = triton.InferRequestedOutput("y", binary_data=binary, class_count=count)
        table = client.infer(model, [tensor], outputs=[wanted]).as_numpy("y")
    finally:
        client.close()
    return [[e.decode() if isinstance(e, bytes) else e for e in row] for row in table.tolist()]


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("repeat", [1, REPEAT])
@pytest.mark.parametrize("model", ["soft", "sig"])
def test_tied_classes_keep_the_lower_index_first(
    server: str, model: str, repeat: int, binary: bool
) -> None:
    rows = np.tile(np.array(list(TIED), dtype=np.float32), (repeat, 1))
    assert (rows.size > SMALL) == (repeat > 1)  # both ranking paths are asked
    got = classes(server, model, rows, binary)
    assert [[int(e.split(":")[1]) for e in row] for row in got] == list(TIED.values()) * repeat
    assert all(e.count(":") == 1 for row in got for e in row)  # "score:index": no labels
    answer = httpx.post(
        f"http://{server}/models/{model}/predict?top_k=3",
        json={"inputs": rows.tolist()},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    ranked = [[int(c["label"]) for c in p["top_k"]] for p in answer.json()["predictions"]]
    assert ranked == list(TIED.values()) * repeat  # predict ranks them as classification does


def test_logits_a_sigmoid_saturates_tie_as_the_scores_served(server: str) -> None:
    # 37 and 50 are both 1.0 after the sigmoid, in float64: tied, so the lower index first
    # (where Triton, ranking the logits, would put index 1 first), as predict's label says.
    rows = np.array([[37.0, 50.0, 0.0]], dtype=np.float32)
    assert classes(server, "sig", rows, True) == [["1.000000:0", "1.000000:1", "0.500000:2"]]
    answer = httpx.post(f"http://{server}/models/sig/predict", json={"inputs": rows.tolist()}, timeout=30)  # fmt: skip
    assert answer.json()["predictions"] == [{"label": "0", "score": 1.0}]


def test_a_binary_logit_of_zero_ties_to_the_first_class(server: str) -> None:
    rows = np.array([[0.0], [2.0], [-2.0]], dtype=np.float32)
    got = classes(server, "logit", rows, False, count=5)  # 5 of 2 classes: both
    assert [[e.split(":", 1)[1] for e in row] for row in got] == [
        ["0:no", "1:yes"],
        ["1:yes", "0:no"],
        ["0:no", "1:yes"],
    ]
