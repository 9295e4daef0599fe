"""An off-the-shelf client, unchanged: tritonclient.http against a real `aiaas serve`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton  # a dev dependency: a missing client fails, never skips
from onnx import TensorProto
from tritonclient.utils import InferenceServerException

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_events import MODEL, publish_digits, reference_logits
from tests.infra.test_serve import start_serve

ROWS = np.linspace(-2, 2, 4 * 64, dtype=np.float32).reshape(4, 64)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("triton")
    store, _ = publish_digits(root)
    words = onnx_factory.identity(root / "words.onnx", elem=TensorProto.STRING)
    Registry(LocalStore(store)).publish(onnx_factory.manifest_for(words, "words", "1"), words)
    return root


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[triton.InferenceServerClient]:
    for server in start_serve(root / "store"):
        client = triton.InferenceServerClient(
            f"127.0.0.1:{server.port}", connection_timeout=10, network_timeout=30
        )
        yield client
        client.close()


@pytest.fixture(scope="module")
def expected(root: Path) -> np.ndarray:
    return reference_logits(root / "mlp.onnx", ROWS)


def test_health_and_readiness(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert client.is_model_ready(MODEL, model_version="1")
    assert not client.is_model_ready(MODEL, model_version="9")
    assert not client.is_model_ready("no-such-model")


def test_server_and_model_metadata(client: triton.InferenceServerClient) -> None:
    assert client.get_server_metadata() == {
        "name": "aiaas",
        "version": "0.1.0",
        "extensions": ["binary_tensor_data", "classification"],
    }
    meta = client.get_model_metadata(MODEL)
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 64]}]
    assert meta["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}]
    assert client.get_model_metadata(MODEL, model_version="1")["versions"] == ["1"]


def test_unknown_version_raises_404(client: triton.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException) as info:
        client.get_model_metadata(MODEL, model_version="9")
    assert info.value.status() == "404"
    assert info.value.message() == f"version '9' of model '{MODEL}' not found"


@pytest.mark.parametrize("binary_in", [True, False], ids=["bin-in", "json-in"])
@pytest.mark.parametrize(
    "binary_out", [True, False, None], ids=["bin-out", "json-out", "default-out"]
)
def test_infer(
    client: triton.InferenceServerClient,
    expected: np.ndarray,
    binary_in: bool,
    binary_out: bool | None,
) -> None:
    tensor = triton.InferInput("x", list(ROWS.shape), "FP32")
    tensor.set_data_from_numpy(ROWS, binary_data=binary_in)
    outputs = (
        None
        if binary_out is None
        else [triton.InferRequestedOutput("logits", binary_data=binary_out)]
    )
    result = client.infer(MODEL, [tensor], outputs=outputs, request_id="t-1")
    logits = result.as_numpy("logits")
    assert logits.dtype == np.float32 and logits.shape == (4, 10)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
    response = result.get_response()
    assert (response["id"], response["model_name"], response["model_version"]) == (
        "t-1",
        MODEL,
        "1",
    )
    sent_binary = binary_out is not False  # no outputs listed: tritonclient asks for binary
    assert ("parameters" in response["outputs"][0]) is sent_binary


def test_infer_a_version(client: triton.InferenceServerClient, expected: np.ndarray) -> None:
    tensor = triton.InferInput("x", list(ROWS.shape), "FP32")
    tensor.set_data_from_numpy(ROWS)
    result = client.infer(MODEL, [tensor], model_version="1")
    np.testing.assert_allclose(result.as_numpy("logits"), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("binary", [True, False])
def test_bytes_tensors(client: triton.InferenceServerClient, binary: bool) -> None:
    words = np.array([["héllo", "", "数字"], ["a", "b", "c"]], dtype=object)
    tensor = triton.InferInput("x", [2, 3], "BYTES")
    tensor.set_data_from_numpy(words, binary_data=binary)
    result = client.infer(
        "words", [tensor], outputs=[triton.InferRequestedOutput("y", binary_data=binary)]
    )
    got = result.as_numpy("y")
    decoded = [[v.decode() if isinstance(v, bytes) else v for v in row] for row in got.tolist()]
    assert decoded == words.tolist()


def test_bad_input_errors_reach_the_client(client: triton.InferenceServerClient) -> None:
    tensor = triton.InferInput("x", [1, 63], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 63), np.float32))
    with pytest.raises(InferenceServerException) as info:
        client.infer(MODEL, [tensor])
    assert info.value.status() == "422"
    assert (
        info.value.message()
        == "input 'x' expects shape [-1, 64]; got [1, 63] (dimension 1 must be 64)"
    )


def test_async_infer(client: triton.InferenceServerClient, expected: np.ndarray) -> None:
    tensor = triton.InferInput("x", list(ROWS.shape), "FP32")
    tensor.set_data_from_numpy(ROWS)
    pending = [client.async_infer(MODEL, [tensor]) for _ in range(8)]
    for request in pending:
        np.testing.assert_allclose(
            request.get_result().as_numpy("logits"), expected, rtol=1e-5, atol=1e-6
        )
