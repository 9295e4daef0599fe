"""`/openapi.json` documents the whole HTTP API, as `aiaas serve` and API Gateway route it.

The document used to list only the control plane's FastAPI routes: predict, OIP and health
were missing (a client generated from it could not predict), no route said it may answer 401
(schemathesis against `aiaas serve --token`: 23 of 23 operations "undocumented status code"),
and every name was any string although the API refuses most. Each golden event's real answer
from the real handler is checked against what the document says of its route.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from functions.control.app import create_app
from functions.runtime.dataplane.model import MAX_TOP_K
from functions.runtime.store import LocalStore
from infra.local.stack import CONTROL_METHODS, PREDICT_ROUTES, shared_functions
from tests.functions.test_control_models import publish_versions
from tests.functions.test_predict_events import (  # noqa: F401  (module-scoped fixtures)
    HEALTH_EVENTS,
    PREDICT_EVENTS,
    health_handler,
    load_event,
    predict_handler,
    published,
)

OWN_ROUTES = {("GET", "/docs"), ("GET", "/openapi.json")}
OWN_ROUTES |= {(method, "/control/{proxy+}") for method in CONTROL_METHODS}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app = create_app(LocalStore(tmp_path_factory.mktemp("document") / "store"))
    with TestClient(app) as client:
        answer = client.get("/openapi.json")
    assert answer.status_code == 200
    return answer.json()  # type: ignore[no-any-return]


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, route in document["paths"].items()
        for method, operation in route.items()
    }


def test_every_route_of_the_stack_is_documented(document: dict[str, Any]) -> None:
    routes = {(r.method, r.path) for spec in shared_functions().values() for r in spec.routes}
    routes |= {(method, path.format(name="{name}")) for method, path in PREDICT_ROUTES}
    assert routes - OWN_ROUTES <= set(operations(document))


def test_every_operation_documents_the_token_refusal(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    missing = [key for key, op in operations(document).items() if "401" not in op["responses"]]
    assert missing == []


@pytest.mark.parametrize(
    ("path", "name", "accepted", "refused"),
    [
        ("/control/models/{name}", "name", "digits-mlp.v2", "My Model"),
        ("/models/{name}/predict", "name", "iris", "-iris"),
        ("/control/models/{name}/aliases/{alias}", "alias", "production", "1st"),
        ("/v2/models/{name}/versions/{version}/infer", "version", "ci-903", "a/b"),
        ("/models/{name}/predict", "name", "digits-mlp", "digits..mlp"),
        ("/control/models/{name}/versions/{version}/card/{file}", "file", "roc.png", "\x87"),
        ("/control/batch/{model}/jobs/{file}", "file", "2026/01/a b.csv", "a/../b.csv"),
        ("/control/batch/{model}/jobs/{file}", "file", "in.csv", "a/.tmp-1/b.csv"),
    ],
)
def test_names_say_their_rule(
    document: dict[str, Any], path: str, name: str, accepted: str, refused: str
) -> None:
    params = next(iter(document["paths"][path].values()))["parameters"]
    (schema,) = [p["schema"] for p in params if p["name"] == name and p["in"] == "path"]
    check = Draft202012Validator(schema)
    assert check.is_valid(accepted) and not check.is_valid(refused)


@pytest.mark.parametrize("event_name", PREDICT_EVENTS + HEALTH_EVENTS)
def test_each_real_answer_is_what_the_document_says(
    document: dict[str, Any],
    predict_handler: Callable[..., Any],  # noqa: F811
    health_handler: Callable[..., Any],  # noqa: F811
    event_name: str,
) -> None:
    event = load_event(event_name)
    handler = health_handler if event_name in HEALTH_EVENTS else predict_handler
    response = handler(event, None)
    method, path = event["routeKey"].split(" ")
    path = path.replace("/digits-mlp", "/{name}")
    answer = operations(document)[(method, path)]["responses"][str(response["statusCode"])]
    kind = response["headers"]["content-type"].split(";")[0]
    if kind != "application/json":  # the binary tensor extension, asked for by the request
        assert event_name == "predict_v2_infer_binary"
        return
    schema = {**answer["content"][kind]["schema"], "components": document["components"]}
    body = json.loads(response["body"])
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(body)]
    assert errors == [], (event_name, body)


def test_the_predict_body_and_top_k_say_what_is_refused(document: dict[str, Any]) -> None:
    """Found by schemathesis' positive_data_acceptance: `{}` and `?top_k=2635` were schema-valid
    requests, answered 400 ("exactly one of inputs or instances", "top_k ... 1 to 1000")."""
    schemas = {"components": document["components"]}
    body = Draft202012Validator({**schemas, "$ref": "#/components/schemas/PredictRequest"})
    assert body.is_valid({"inputs": [[1.0]]}) and body.is_valid({"instances": [[1.0]]})
    assert not body.is_valid({}) and not body.is_valid({"inputs": [], "instances": []})
    assert not body.is_valid({"inputs": [[1.0]], "topK": 3})  # a 400: ?top_k is the query's
    assert body.is_valid({"instances": [[1.0]], "signature_name": "serving_default"})
    assert not body.is_valid({"instances": [[1.0]], "parameters": {"threshold": 0.7}})
    assert body.is_valid({"instances": [[1.0]], "request_id": "r-7"})  # the caller's own
    explain = Draft202012Validator({**schemas, "$ref": "#/components/schemas/ExplainRequest"})
    assert explain.is_valid({"inputs": [[1.0]], "parameters": {"samples": 64}})
    operation = document["paths"]["/models/{name}/predict"]["post"]
    (top_k,) = [p["schema"] for p in operation["parameters"] if p["name"] == "top_k"]
    assert top_k["maximum"] == MAX_TOP_K
    listing = document["paths"]["/control/models"]["get"]["parameters"]
    (after,) = [p["schema"] for p in listing if p["name"] == "after"]
    assert not Draft202012Validator(after).is_valid("")


def test_a_model_s_own_failure_and_a_timeout_are_documented(document: dict[str, Any]) -> None:
    """A finite request a model answers NaN for is the documented 500 (README, docs/oip.md), a
    function past its Timeout a 504; the document listed neither (api hunt: schemathesis's
    status_code_conformance flagged the 500)."""
    for (method, path), operation in operations(document).items():
        if path.startswith(("/models/", "/v2/models/")):
            assert {"500", "504"} <= set(operation["responses"]), (method, path)


def test_an_encoding_not_taken_is_a_documented_415_on_every_control_body_route(
    document: dict[str, Any], tmp_path: Path
) -> None:
    """`PUT /control/batch/{model}/jobs/{file}` with `Content-Encoding: br` (an upload a client
    compressed its own way) is a 415, which the document did not list there nor on a DELETE or
    an abort: a client generated from it had no case for the answer (journey15 hunt)."""
    values = {"name": "iris", "model": "iris", "version": "1", "alias": "production"}
    values["file"] = "day1.csv"
    client = TestClient(create_app(LocalStore(tmp_path / "store")))
    checked = 0
    for (method, path), operation in operations(document).items():
        if not path.startswith("/control/") or method not in ("DELETE", "POST", "PUT"):
            continue
        headers = {"content-encoding": "br", "content-type": "application/json"}
        answer = client.request(method, path.format(**values), content=b"{}", headers=headers)
        assert answer.status_code == 415, (method, path, answer.text)
        assert "gzip or deflate" in answer.json()["error"]
        assert "415" in operation["responses"], (method, path)
        checked += 1
    assert checked == 13  # every DELETE, POST and PUT of the control plane


def test_a_store_in_trouble_is_a_documented_503_on_every_control_route(
    document: dict[str, Any], tmp_path: Path, classifier_onnx: Path
) -> None:
    """A corrupt alias record or capture setting (or a store that cannot be reached) is a 503
    `{"error": ...}` on any control route; the document listed 503 only on a job's submit, so
    a client generated from it met an undocumented status (journey15 hunt)."""
    store = LocalStore(tmp_path / "store")
    publish_versions(store, classifier_onnx, "1")  # of MODEL, iris
    store.put_bytes("models/iris/aliases/production.json", b"{not json")
    store.put_bytes("models/iris/capture.json", b'{"sample": "x"}')
    client = TestClient(create_app(store))
    for path in ("/control/models/iris/aliases/production", "/control/models/iris/capture"):
        answer = client.get(path)
        assert answer.status_code == 503, answer.text
        assert "corrupt" in answer.json()["error"]
    for (method, path), operation in operations(document).items():
        if path.startswith("/control/"):
            answer = operation["responses"]["503"]
            if method == "HEAD":  # the GET's answer, headers only
                assert "content" not in answer, path
                continue
            assert answer["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"
            }, (method, path)


def test_a_binary_infer_and_its_headers_are_what_the_document_says(
    document: dict[str, Any],
    predict_handler: Callable[..., Any],  # noqa: F811
) -> None:
    """The document answered OIP's binary tensors but took only JSON, and named none of the
    headers: a client generated from it could not send binary tensors nor a routing key, and
    read neither the JSON header's length nor the version that answered (journey15 hunt)."""
    event = load_event("predict_v2_infer_binary")
    operation = operations(document)[("POST", "/v2/models/{name}/infer")]
    assert event["headers"]["content-type"] in operation["requestBody"]["content"]
    headers = {p["name"].lower(): p for p in operation["parameters"] if p["in"] == "header"}
    assert {"inference-header-content-length", "x-aiaas-routing-key"} <= set(headers)
    response = predict_handler(event, None)
    assert response["statusCode"] == 200
    answer = operation["responses"]["200"]
    assert response["headers"]["content-type"] in answer["content"]
    for name in answer["headers"]:
        assert name.lower() in response["headers"], name
    predict = operations(document)[("POST", "/models/{name}/predict")]["parameters"]
    assert "x-aiaas-routing-key" in {p["name"] for p in predict}


def test_every_header_an_alias_answer_documents_is_sent(
    document: dict[str, Any], tmp_path: Path, classifier_onnx: Path
) -> None:
    """The document took `If-Match` but named no `ETag` on any answer (nor a create's
    `Location`): a client generated from it had no way to the value (journey15 hunt)."""
    store = LocalStore(tmp_path / "store")
    publish_versions(store, classifier_onnx, "1", "2")
    client = TestClient(create_app(store))
    alias = "/control/models/iris/aliases/staging"
    steps = [
        ("PUT", alias, {"version": "1"}, "201"),
        ("GET", alias, None, "200"),
        ("PUT", alias, {"version": "2"}, "200"),
        ("PUT", f"{alias}/shadow", {"version": "1"}, "200"),
        ("DELETE", f"{alias}/shadow", None, "200"),
        ("POST", f"{alias}/rollback", {}, "200"),
    ]
    for method, path, body, status in steps:
        answer = client.request(method, path, json=body)
        assert str(answer.status_code) == status, (method, path, answer.text)
        route = path.replace("/iris/", "/{name}/").replace("/staging", "/{alias}")
        said = operations(document)[(method, route)]["responses"][status]["headers"]
        assert "ETag" in said, (method, path)
        assert {h.lower() for h in said} <= set(answer.headers), (method, path, said)
    assert client.get(alias).headers["etag"] == answer.headers["etag"]


def test_head_is_documented_beside_each_control_get_and_answered_so(
    document: dict[str, Any], tmp_path: Path, classifier_onnx: Path
) -> None:
    """The stack routes HEAD /control/{proxy+} and the app answers it as the GET, headers only,
    but the document had no HEAD operation: a client generated from it could not check an
    alias's ETag without its body (leftovers2 3)."""
    gets = {path for (method, path) in operations(document) if method == "GET"}
    heads = {path for (method, path) in operations(document) if method == "HEAD"}
    assert heads == {path for path in gets if path.startswith("/control/")}
    assert len({op["operationId"] for op in operations(document).values()}) == len(
        operations(document)
    )
    store = LocalStore(tmp_path / "store")
    publish_versions(store, classifier_onnx, "1")
    client = TestClient(create_app(store))
    client.put("/control/models/iris/aliases/staging", json={"version": "1"})
    for path, route, status in [
        ("/control/models/iris/aliases/staging", "/control/models/{name}/aliases/{alias}", "200"),
        ("/control/models", "/control/models", "200"),
        ("/control/models/nosuch", "/control/models/{name}", "404"),
    ]:
        answer = client.head(path)
        assert str(answer.status_code) == status and answer.content == b"", (path, answer)
        said = operations(document)[("HEAD", route)]["responses"][status]
        assert "content" not in said, route
        assert {h.lower() for h in said.get("headers", {})} <= set(answer.headers), route
        got = client.get(path).headers
        assert answer.headers.get("etag") == got.get("etag"), path  # the GET's, body aside
        assert answer.headers["content-length"] == got["content-length"], path
