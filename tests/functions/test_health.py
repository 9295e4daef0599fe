"""The health function: live, ready (the registry answers), server metadata, and its errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.local.functions import load_handler
from tests.functions.test_predict_events import body_of, http_event, load_event, publish_digits
from tests.s3server import free_port

Handler = Callable[..., dict[str, Any]]
HANDLER = "functions.health.handler.handler"


@pytest.fixture(scope="module")
def health(tmp_path_factory: pytest.TempPathFactory) -> Handler:
    store, _ = publish_digits(tmp_path_factory.mktemp("health"))
    return load_handler(HANDLER, {"AIAAS_STORE": str(store)})


def test_live(health: Handler) -> None:
    response = health(http_event("GET", "/v2/health/live"), None)
    assert (response["statusCode"], body_of(response)) == (200, {"live": True})
    assert response["headers"]["content-type"] == "application/json"


def test_ready_when_the_registry_answers(health: Handler) -> None:
    response = health(http_event("GET", "/v2/health/ready"), None)
    assert (response["statusCode"], body_of(response)) == (200, {"ready": True})


def test_ready_on_an_empty_store(tmp_path: Path) -> None:
    handler = load_handler(HANDLER, {"AIAAS_STORE": str(tmp_path / "empty")})
    response = handler(load_event("health_ready"), None)
    assert (response["statusCode"], body_of(response)) == (200, {"ready": True})


def test_ready_on_s3(s3_bucket: str) -> None:
    handler = load_handler(HANDLER, {"AIAAS_STORE": f"s3://{s3_bucket}/registry"})
    response = handler(load_event("health_ready"), None)
    assert (response["statusCode"], body_of(response)) == (200, {"ready": True})


def test_not_ready_when_the_store_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    handler = load_handler(HANDLER, {"AIAAS_STORE": "s3://aiaas-private/registry"})
    response = handler(load_event("health_ready"), None)
    assert (response["statusCode"], body_of(response)) == (
        503,
        {"error": "the model store is not reachable", "ready": False},
    )
    for secret in ("aiaas-private", "127.0.0.1", "s3://", "Errno", "Traceback"):
        assert secret not in response["body"]


def test_server_metadata(health: Handler) -> None:
    response = health(http_event("GET", "/v2"), None)
    assert (response["statusCode"], body_of(response)) == (
        200,
        {
            "name": "aiaas",
            "version": "0.1.0",
            "extensions": ["binary_tensor_data", "classification"],
        },
    )


@pytest.mark.parametrize("path", ["/v2/health/live", "/v2/health/ready", "/v2"])
def test_wrong_method_is_405(health: Handler, path: str) -> None:
    response = health(http_event("POST", path, "{}"), None)
    assert (response["statusCode"], body_of(response)) == (
        405,
        {"error": f"POST is not allowed on {path}; use GET"},
    )


def test_unknown_path_is_404(health: Handler) -> None:
    response = health(http_event("GET", "/v2/health/startup"), None)
    assert (response["statusCode"], body_of(response)) == (
        404,
        {"error": "no route for GET /v2/health/startup"},
    )


def test_large_body_is_413(health: Handler) -> None:
    response = health(http_event("GET", "/v2/health/live", "x" * (64 * 1024 + 1)), None)
    assert (response["statusCode"], body_of(response)) == (
        413,
        {"error": "request body is over the 65536 byte limit"},
    )


def test_not_an_http_event_is_400(health: Handler) -> None:
    response = health({"Records": []}, None)
    assert (response["statusCode"], body_of(response)) == (
        400,
        {"error": "not an API Gateway HTTP API (payload 2.0) event"},
    )


def test_mixed_case_headers_and_lower_case_method(health: Handler) -> None:
    event = http_event(
        "get", "/v2/health/live", headers={"Accept": "application/json", "X-Trace": "1"}
    )
    response = health(event, None)
    assert (response["statusCode"], body_of(response)) == (200, {"live": True})


def test_health_imports_neither_onnxruntime_nor_powertools(tmp_path: Path) -> None:
    """A fresh interpreter, as a cold start: the health function needs two constants, not a model."""
    import subprocess
    import sys

    script = (
        "import sys, functions.health.handler as h\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'onnxruntime', 'aws_lambda_powertools', 'numpy', 'boto3'})\n"
        "print(','.join(heavy) or 'none')\n"
    )
    env = {"AIAAS_STORE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "none", out.stdout
