"""The real predict and health functions behind the local gateway, in-process."""

from __future__ import annotations

import ctypes
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.model import RUN_TIMED_EVERY
from infra.local.functions import (
    export_native_settings,
    function_instances,
    local_environment,
    patched_environ,
)
from infra.local.gateway import Gateway
from infra.template import functions, load_template
from tests.functions.test_predict_events import MODEL, publish_digits, reference_logits
from tests.infra.test_gateway import doc, request

# ---- the real functions ------------------------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Gateway, Path]:
    root = tmp_path_factory.mktemp("gateway")
    store, onnx_path = publish_digits(root)
    specs = functions(load_template(), {"ModelNames": [MODEL], "ModelSelector": ""})
    env = {
        "AIAAS_STORE": str(store),
        "AIAAS_CACHE_DIR": str(root / "cache"),
        "AIAAS_DISABLE_METRICS": "true",
    }
    return Gateway(function_instances(specs, env)), onnx_path


def test_predict_and_health_through_the_gateway(project: tuple[Gateway, Path]) -> None:
    gateway, onnx_path = project
    rows = np.full((1, 64), 3.0, np.float32)
    body = json.dumps({"inputs": rows.tolist()}).encode()
    response = gateway.handle(
        request(
            "POST",
            f"/models/{MODEL}/predict",
            body,
            query="top_k=2",
            content_type="application/json",
        )
    )
    assert response.status == 200
    assert len(doc(response)["predictions"][0]["top_k"]) == 2
    np.testing.assert_allclose(
        doc(response)["outputs"]["logits"], reference_logits(onnx_path, rows), rtol=1e-5
    )
    assert doc(gateway.handle(request("GET", "/v2/health/live"))) == {"live": True}
    assert doc(gateway.handle(request("GET", "/v2/health/ready"))) == {"ready": True}


def test_responses_carry_the_function_s_time_in_its_model(project: tuple[Gateway, Path]) -> None:
    gateway, _ = project
    body = json.dumps({"inputs": np.zeros((8, 64)).tolist()}).encode()
    path = f"/models/{MODEL}/predict"
    for _ in range(RUN_TIMED_EVERY * 3):  # one session.run in RUN_TIMED_EVERY is timed
        answer = gateway.handle(request("POST", path, body, content_type="application/json"))
    assert answer.status == 200
    # A moving average of the time in session.run: there, and far below a second.
    assert 0 < answer.model_seconds < 0.1
    assert ("model_seconds", answer.model_seconds) not in answer.headers  # never sent
    assert gateway.handle(request("GET", "/v2/health/live")).model_seconds == 0.0


def test_binary_infer_through_the_gateway(project: tuple[Gateway, Path]) -> None:
    gateway, onnx_path = project
    rows = np.linspace(0, 16, 128, dtype=np.float32).reshape(2, 64)
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [2, 64],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 512},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    response = gateway.handle(
        request(
            "POST",
            f"/v2/models/{MODEL}/infer",
            head + rows.astype("<f4").tobytes(),
            Inference_Header_Content_Length=str(len(head)),
            Content_Type="application/octet-stream",
        )
    )
    assert response.status == 200, response.body
    length = int(dict(response.headers)["inference-header-content-length"])
    logits = struct.unpack("<20f", response.body[length:])
    np.testing.assert_allclose(
        np.reshape(logits, (2, 10)), reference_logits(onnx_path, rows), rtol=1e-5
    )


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/v2/models/{MODEL}/versions/..", 400),
        # a path as granian hands it over, decoded once: the function gets `../../store`
        (f"/v2/models/{MODEL}/versions/..%2F..%2Fstore", 404),
        ("/v2/models/../versions/1", 404),
        ("/v2/models/..%2F../ready", 404),
    ],
)
def test_path_traversal_is_4xx(project: tuple[Gateway, Path], path: str, status: int) -> None:
    response = project[0].handle(request("GET", path))
    assert response.status == status
    assert "error" in doc(response)


def test_two_models_on_one_handler_are_two_containers(tmp_path: Path) -> None:
    from functions.runtime.registry import Registry
    from functions.runtime.store import LocalStore
    from tests import onnx_factory

    registry = Registry(LocalStore(tmp_path / "store"))
    for name, classes in (("two", 2), ("five", 5)):
        path = onnx_factory.linear_classifier(
            tmp_path / f"{name}.onnx", features=64, classes=classes
        )
        registry.publish(onnx_factory.manifest_for(path, name, "1"), path)
    specs = functions(load_template(), {"ModelNames": ["two", "five"], "ModelSelector": ""})
    env = {"AIAAS_STORE": str(tmp_path / "store"), "AIAAS_CACHE_DIR": str(tmp_path / "cache")}
    instances = function_instances(specs, env)
    assert (
        instances["Predicttwo"].handler.__globals__
        is not instances["Predictfive"].handler.__globals__
    )
    gateway = Gateway(instances)
    body = json.dumps({"inputs": [[1.0] * 64]}).encode()
    for name, classes in (("two", 2), ("five", 5)):
        response = gateway.handle(
            request("POST", f"/models/{name}/predict", body, content_type="application/json")
        )
        assert np.shape(doc(response)["outputs"]["logits"]) == (1, classes)


def test_local_environment_drops_cloud_placeholders() -> None:
    spec = functions(load_template())["Predictdigitsmlp"]
    env = local_environment(spec, {"AIAAS_STORE": "/data/store"})
    assert env["AIAAS_STORE"] == "/data/store"
    assert env["AIAAS_MODEL"] == MODEL
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "1024"
    assert not any("<" in value for value in env.values())


def test_a_predict_run_is_stopped_at_most_at_the_http_api_s_30_s() -> None:
    """A model given Timeout 900 (a template not checked by `infra.model_settings`): its caller,
    the HTTP API, gives up at 30 s, and so does the run `aiaas serve` would have left to burn
    a core to 900 s."""
    spec = functions(load_template())["Predictdigitsmlp"]
    assert local_environment(spec, {})["AIAAS_MAX_RUN_SECONDS"] == "30"
    spec.properties["Timeout"] = 900
    assert local_environment(spec, {})["AIAAS_MAX_RUN_SECONDS"] == "30"
    spec.properties["Timeout"] = 5
    assert local_environment(spec, {})["AIAAS_MAX_RUN_SECONDS"] == "5"


def test_a_function_s_environment_leaves_the_process_s_c_environment_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A native thread's getenv during a setenv can crash (granian's runtime did, at start)."""
    getenv = ctypes.CDLL(None).getenv
    getenv.restype = ctypes.c_char_p
    monkeypatch.setenv("AIAAS_TEST_KEPT", "server")
    with patched_environ({"AIAAS_TEST_NEW": "function", "AIAAS_TEST_KEPT": "function"}):
        assert os.environ["AIAAS_TEST_NEW"] == os.environ["AIAAS_TEST_KEPT"] == "function"
        assert getenv(b"AIAAS_TEST_NEW") is None
        assert getenv(b"AIAAS_TEST_KEPT") == b"server"
    assert "AIAAS_TEST_NEW" not in os.environ
    assert os.environ["AIAAS_TEST_KEPT"] == "server"


def test_settings_native_libraries_read_reach_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A function's environment is Python's only, so what the tokenizers library reads through
    getenv (TOKENIZERS_PARALLELISM, in the template's Globals) is exported once, at start; a
    value the user set is kept."""
    getenv = ctypes.CDLL(None).getenv
    getenv.restype = ctypes.c_char_p
    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    export_native_settings({"TOKENIZERS_PARALLELISM": "false", "AIAAS_OTHER": "x"})
    assert getenv(b"TOKENIZERS_PARALLELISM") == b"false"
    assert "AIAAS_OTHER" not in os.environ
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")
    export_native_settings({"TOKENIZERS_PARALLELISM": "false"})
    assert getenv(b"TOKENIZERS_PARALLELISM") == b"true"


def test_local_runs_have_the_templates_global_settings_and_export_what_native_code_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`aiaas serve` and `invoke` apply the template's Globals (less the cloud bucket), and
    export those onnxruntime reads through getenv: its telemetry stays off locally too."""
    from infra.local.stack import GLOBAL_ENVIRONMENT

    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert {k: v for k, v in variables.items() if isinstance(v, str)} == GLOBAL_ENVIRONMENT
    getenv = ctypes.CDLL(None).getenv
    getenv.restype = ctypes.c_char_p
    monkeypatch.setenv("ORT_DISABLE_TELEMETRY", "")  # put back as it was after the test
    monkeypatch.delenv("ORT_DISABLE_TELEMETRY")
    export_native_settings(GLOBAL_ENVIRONMENT)
    assert getenv(b"ORT_DISABLE_TELEMETRY") == b"1"
