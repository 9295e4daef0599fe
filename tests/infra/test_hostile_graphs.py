"""ONNX files a shared registry's users publish carelessly or with intent, tried as a user
would: `aiaas publish`, then `aiaas serve` over real HTTP beside a good model.

A graph with no inputs or no outputs was published and then answered every request with a
503 "corrupt manifest"; an opset newer than onnxruntime, or a custom operator, was refused
with onnxruntime's C++ function signature and no fix. A graph sizing its answer from a
request's value was refused (413) only after the whole answer was encoded: for 2.5e8 values,
18.5 s and 5.1 GB resident where the tensor is 1 GB. A Loop whose trip count is a request
value ran for as long as it said, holding a request thread (AIAAS_MAX_RUN_SECONDS stops it).
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_serve import ServeProcess, start_serve

pytestmark = pytest.mark.xdist_group("hostile_graphs")


def publish(store: Path, path: Path, name: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["publish", str(path), "--name", name, "--store", str(store)])
    return code, err.getvalue()


@pytest.mark.parametrize(
    ("kind", "fix"),
    [
        (
            "no_inputs",
            "has no graph inputs: aiaas answers a request's inputs with the graph's "
            "outputs; export the model with its inputs (torch.onnx.export's args)",
        ),
        (
            "no_outputs",
            "has no graph outputs: aiaas answers a request's inputs with the graph's "
            "outputs; export the model with its outputs (torch.onnx.export's output_names)",
        ),
        (
            "custom_op",
            "it uses operator Scramble of domain com.example, which onnxruntime does "
            "not know (a custom op, or one newer than this onnxruntime): export it with standard "
            "ONNX operators",
        ),
        ("new_opset", "it uses opset 99 of ai.onnx, newer than onnxruntime"),
    ],
    ids=lambda value: value if " " not in value else "",
)
def test_publish_refuses_a_graph_that_can_never_serve_in_one_line_naming_the_fix(
    tmp_path: Path, kind: str, fix: str
) -> None:
    path = onnx_factory.careless(tmp_path / f"{kind}.onnx", kind)
    code, err = publish(tmp_path / "store", path, kind)
    assert code == 1
    assert err.startswith(f"aiaas publish: error: {path}") and fix in err, err
    assert err.count("\n") == 1 and "onnxruntime::" not in err and ".h:" not in err, err
    assert not (tmp_path / "store" / "models" / kind).exists()  # nothing half-published


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("hostile")
    for name, path in (
        ("sized", onnx_factory.sized_by_input(root / "sized.onnx")),
        ("good", onnx_factory.identity(root / "good.onnx")),
        ("looping", onnx_factory.looping(root / "looping.onnx")),
        ("evens", onnx_factory.even_rows(root / "evens.onnx")),
    ):
        assert publish(root / "store", path, name)[0] == 0
    yield from start_serve(root / "store", env={"AIAAS_MAX_RUN_SECONDS": "0.5"})


@pytest.fixture
def http(server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        yield client


def test_an_answer_sized_past_the_response_limit_is_a_413_before_it_is_encoded(
    http: httpx.Client,
) -> None:
    """7e6 values (28 MB float32): the 413 named the JSON's 74 MB, after writing it."""
    answer = http.post("/models/sized/predict", json={"inputs": [[7e6]]})
    assert answer.status_code == 413, answer.text
    assert answer.json() == {
        "error": "model sized:1 answered 7000000 values (y [1, 7000000]), more than a response "
        "can carry (6291456 bytes, AWS Lambda's limit, at least a byte a value): ask for less "
        "in one request (fewer rows, fewer outputs, or smaller values for an input that sizes "
        "the answer)"
    }
    infer = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [7e6]}]}
    assert http.post("/v2/models/sized/infer", json=infer).status_code == 413
    assert http.post("/models/sized/predict", json={"inputs": [[3]]}).json()["outputs"] == {
        "y": [[1.0, 1.0, 1.0]]
    }
    assert http.post("/models/good/predict", json={"inputs": [[1.0, 2.0, 3.0]]}).status_code == 200


def test_a_size_the_graph_refuses_is_a_422_without_onnxruntime_internals(
    http: httpx.Client,
) -> None:
    answer = http.post("/models/sized/predict", json={"inputs": [[-5]]})
    assert (answer.status_code, answer.json()) == (
        422,
        {
            "error": "the model refused these inputs: ConstantOfShape: Tensor shape.Size() "
            "must be >= 0"
        },
    )


def test_a_run_past_the_limit_is_stopped_a_503_and_the_thread_serves_on(
    http: httpx.Client,
) -> None:
    """1e9 trips: ~1,000 s of a core, for as long as it ran, with no limit there was."""
    began = time.monotonic()
    answer = http.post("/models/looping/predict", json={"inputs": [[1e9]]})
    assert time.monotonic() - began < 5
    assert (answer.status_code, answer.json()) == (
        503,
        {
            "error": "model looping:1 ran longer than the 0.5 s a run may take here "
            "(AIAAS_MAX_RUN_SECONDS); send fewer rows, or smaller values for an input that "
            "sets how much the model computes"
        },
    )
    for _ in range(8):  # every request thread's options were reset: none is stopped at once
        assert http.post("/models/looping/predict", json={"inputs": [[3]]}).json()["outputs"] == {
            "y": [[3.0]]
        }


def test_a_batch_size_the_graph_cannot_take_is_the_models_500_counted_as_one(
    http: httpx.Client,
) -> None:
    """A row sent exactly as the signature says failed in the graph's Reshape and was the
    caller's 422: the 5xx alarms and a rollout's error rate never saw it, and a rollout
    promoted a version that failed every odd batch."""
    assert (
        http.post("/models/evens/predict", json={"inputs": [[1, 2, 3, 4]] * 2}).status_code == 200
    )
    answer = http.post("/models/evens/predict", json={"inputs": [[1, 2, 3, 4]]})
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert error.startswith("the model failed: Reshape: The input tensor cannot be reshaped")
    assert error.endswith("(on 1 row that match the model's signature: the model cannot answer "
                          "this batch size)")  # fmt: skip
    assert "onnxruntime::" not in error and ".h:" not in error
    counted = [line for line in http.get("/metrics").text.splitlines() if "evens" in line]
    assert any('status_class="5xx"' in line and line.endswith(" 1.0") for line in counted), counted
