"""Schemathesis against the control plane's own OpenAPI: no generated request gets a 5xx.

The app runs in-process (ASGI) over a directory store holding a published model with an alias;
some requests name it explicitly so that generated bodies reach the registry, not only the
name checks. Every operation gets schema-valid (positive) and schema-violating (negative)
requests; every answer is a success or a 4xx in the one error shape, `{"error": "..."}`.
Examples per operation and mode are bounded to keep the run short.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.control.app import create_app
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory

MODEL = "iris"
OPERATIONS = [
    ("GET", "/control/models"),
    ("GET", "/control/models/{name}"),
    ("GET", "/control/models/{name}/versions/{version}"),
    ("GET", "/control/models/{name}/aliases/{alias}"),
    ("PUT", "/control/models/{name}/aliases/{alias}"),
    ("DELETE", "/control/models/{name}/aliases/{alias}"),
    ("POST", "/control/models/{name}/aliases/{alias}/rollback"),
    ("PUT", "/control/models/{name}/aliases/{alias}/shadow"),
    ("DELETE", "/control/models/{name}/aliases/{alias}/shadow"),
    ("GET", "/control/models/{name}/capture"),
    ("PUT", "/control/models/{name}/capture"),
    ("DELETE", "/control/models/{name}/capture"),
    ("GET", "/control/models/{name}/rollouts"),
    ("POST", "/control/models/{name}/rollouts"),
    ("GET", "/control/models/{name}/rollouts/{alias}"),
    ("POST", "/control/models/{name}/rollouts/{alias}/abort"),
    ("GET", "/control/batch/{model}/jobs"),
    ("POST", "/control/batch/{model}/jobs"),
    ("PUT", "/control/batch/{model}/jobs/{file}"),
    ("GET", "/control/batch/{model}/jobs/{file}"),
    ("POST", "/control/models/{name}/compare"),
    ("GET", "/control/models/{name}/versions/{version}/card"),
    ("GET", "/control/models/{name}/versions/{version}/card/{file}"),
    ("DELETE", "/control/models/{name}/versions/{version}"),  # last: it may delete version 1
]
# HEAD beside each GET (the GET's answer, headers only), before that DELETE.
OPERATIONS[-1:-1] = [("HEAD", path) for method, path in OPERATIONS if method == "GET"]
POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
# Schema-violating requests exist only where the schema constrains something: the JSON bodies
# and the list bounds (any string is a valid path parameter).
RUNS = [(m, p, POSITIVE) for m, p in OPERATIONS] + [
    ("PUT", "/control/models/{name}/aliases/{alias}", NEGATIVE),
    ("PUT", "/control/models/{name}/aliases/{alias}/shadow", NEGATIVE),
    # a move's `reason` (at most 500 characters, no control character) in these bodies too
    ("POST", "/control/models/{name}/aliases/{alias}/rollback", NEGATIVE),
    ("POST", "/control/models/{name}/rollouts/{alias}/abort", NEGATIVE),
    ("PUT", "/control/models/{name}/capture", NEGATIVE),
    ("POST", "/control/models/{name}/rollouts", NEGATIVE),
    ("POST", "/control/batch/{model}/jobs", NEGATIVE),
    ("POST", "/control/models/{name}/compare", NEGATIVE),
    # ... and the list routes' bounds (`limit`: 1-1000)
    ("GET", "/control/models", NEGATIVE),
    ("GET", "/control/models/{name}", NEGATIVE),
    ("GET", "/control/batch/{model}/jobs", NEGATIVE),
]
# Real names for some examples, so generated bodies get past the name checks.
KNOWN = {"name": MODEL, "model": MODEL, "alias": "production", "version": "1"}


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> schemathesis.BaseSchema:
    root: Path = tmp_path_factory.mktemp("openapi-fuzz")
    store = LocalStore(root / "store")
    onnx = onnx_factory.linear_classifier(root / "iris.onnx")
    registry = Registry(store)
    for version in ("1", "2"):
        registry.publish(onnx_factory.manifest_for(onnx, MODEL, version), onnx)
    registry.set_alias(MODEL, "production", "1", actor="ci")
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(store))


def test_the_fuzzed_operations_are_every_documented_one(schema: schemathesis.BaseSchema) -> None:
    documented = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    # the document also lists the data plane's routes, which each model's function answers
    assert {(m, p) for m, p in documented if p.startswith("/control/")} == set(OPERATIONS)


def strategy(operation: Any, mode: schemathesis.GenerationMode) -> st.SearchStrategy[Any]:
    known = {k: v for k, v in KNOWN.items() if "{" + k + "}" in operation.path}
    generated = operation.as_strategy(generation_mode=mode)
    if not known or mode is NEGATIVE:
        return generated  # type: ignore[no-any-return]
    return generated | operation.as_strategy(generation_mode=mode, path_parameters=known)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("method", "path", "mode"), RUNS, ids=[f"{m} {p} {mode.value}" for m, p, mode in RUNS]
)
def test_no_generated_request_gets_a_server_error(
    schema: schemathesis.BaseSchema, method: str, path: str, mode: schemathesis.GenerationMode
) -> None:
    operation = schema[path][method]

    @settings(
        max_examples=20 if method == "HEAD" else 60,  # a HEAD runs its GET: checked there
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy(operation, mode))
    def check(case: schemathesis.Case) -> None:
        response = case.call()
        assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
        if case.method == "HEAD":
            assert response.content == b"", (case.formatted_path, response.content[:100])
        elif response.status_code >= 400:
            body = response.json()
            assert list(body) == ["error"] and isinstance(body["error"], str), body
            assert "Traceback" not in body["error"]

    check()
