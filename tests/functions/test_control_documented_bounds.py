"""Bounds the OpenAPI documents as the server checks them. A list's `after` (the page's `next`)
has the rule of what the list is of: the document said "a string", and schemathesis sent
`after=<control characters>` to GET /control/models as schema-valid and got the 400; so did a
capture `sample` of 4.4e187, and an OIP request with no inputs."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime import names
from functions.runtime.errors import InvalidName
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory

CASES = {
    "/control/models": ["iris", "a.b", "a-1_b", "a..b", "Iris", "-a", "a" * 65, "a b", "é"],
    "/control/models/iris": ["1", "v1.2", "RC-3", "a..b", "-1", "1.", "v" * 65, "\x01"],
    # a place in the input folder, not a job: a page's `next` may be a name no run takes
    "/control/batch/iris/jobs": [
        "x.csv", "a/b.csv", "../x.csv", ".tmp-x", "a//b", "a/./b", "\x7f", "x" * 256, "",
        "x" * 4096, "x" * 4097,
    ],
}  # fmt: skip
DOCUMENTED = {
    "/control/models": "/control/models",
    "/control/models/iris": "/control/models/{name}",
    "/control/batch/iris/jobs": "/control/batch/{model}/jobs",
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    root = tmp_path_factory.mktemp("after")
    registry = Registry(LocalStore(root / "store"))
    onnx = onnx_factory.linear_classifier(root / "linear.onnx")
    registry.publish(onnx_factory.manifest_for(onnx, "iris", "1"), onnx)
    return TestClient(create_app(registry.store))


def after_schema(client: TestClient, path: str) -> jsonschema.Draft202012Validator:
    operation = client.get("/openapi.json").json()["paths"][path]["get"]
    (after,) = [p for p in operation["parameters"] if p["name"] == "after"]
    return jsonschema.Draft202012Validator(after["schema"]["anyOf"][0])


@pytest.mark.parametrize(
    ("route", "value"), [(route, value) for route, values in CASES.items() for value in values]
)
def test_the_documented_after_rule_is_the_servers(
    client: TestClient, route: str, value: str
) -> None:
    documented = after_schema(client, DOCUMENTED[route]).is_valid(value)
    answer = client.get(route, params={"after": value})
    assert answer.status_code in (200, 400), answer.text
    assert documented == (answer.status_code == 200), answer.text


@pytest.mark.parametrize("sample", [0, 0.05, 1, -0.01, 1.5, 1e-7, 1e-6])
def test_the_documented_capture_sample_bounds_are_the_servers(
    client: TestClient, sample: float
) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["CaptureChange"]
    documented = jsonschema.Draft202012Validator(schema).is_valid({"sample": sample})
    answer = client.put("/control/models/iris/capture", json={"sample": sample})
    assert answer.status_code in (200, 400), answer.text
    assert documented == (answer.status_code == 200), answer.text


def test_an_inference_request_without_inputs_is_documented_as_invalid(client: TestClient) -> None:
    """The predict function answers `{"inputs": []}` with a 400 (functions/runtime/codecs)."""
    document = client.get("/openapi.json").json()
    request = {
        "components": document["components"],
        "$ref": "#/components/schemas/InferenceRequest",
    }
    validator = jsonschema.Draft202012Validator(request)
    tensor = {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
    assert not validator.is_valid({"inputs": []})
    assert validator.is_valid({"inputs": [tensor]})


@pytest.mark.parametrize(
    "deny",
    [
        ["email"], ["a" * 128], [""], ["  "], ["a" * 129], ["f"] * 257, ["f"] * 256,
        # no control or formatting character (hunt_security2 1): one forged a log line
        ["x\nERROR aiaas: forged"], ["\x1b]0;pwned\x07"], ["a\tb"], ["x\u202ey"], ["email\n"],
        ["first name"], ["prénom"],
    ],
)  # fmt: skip
def test_the_documented_deny_list_is_the_servers(client: TestClient, deny: list[str]) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["CaptureChange"]
    documented = jsonschema.Draft202012Validator(schema).is_valid({"sample": 0.1, "deny": deny})
    answer = client.put("/control/models/iris/capture", json={"sample": 0.1, "deny": deny})
    assert answer.status_code in (200, 400), answer.text
    assert documented == (answer.status_code == 200), answer.text


KEYS = ["x.csv", "a/b.csv", "", "../x.csv", "a//b", "a/./b", "a\x00b", "a/" + "b" * 256]
# As many parts as 1024 characters hold, and more: the pattern leaves their count to maxLength
KEYS += ["a/" * 500 + "b", "a/" * 520 + "b"]


@pytest.mark.parametrize("rest", KEYS)
@pytest.mark.parametrize(
    ("schema_name", "field", "prefix"),
    [("JobSource", "source", "uploads/"), ("CompareSpec", "data", "capture/iris/")],
)
def test_a_documented_store_key_is_one_the_server_takes(
    client: TestClient, schema_name: str, field: str, prefix: str, rest: str
) -> None:
    """A batch job's `source`, a comparison's `data`: keys a caller names whole."""
    schema = client.get("/openapi.json").json()["components"]["schemas"][schema_name]
    pattern = re.compile(schema["properties"][field]["pattern"])
    most = schema["properties"][field]["maxLength"]
    key = prefix + rest
    try:
        names.store_key(key, field)
        taken = True
    except InvalidName:
        taken = False
    assert (bool(pattern.search(key)) and len(key) <= most) == taken
    assert not pattern.search("elsewhere/" + rest)  # not under the prefix


@pytest.fixture
def two_versions(tmp_path: Path) -> TestClient:
    """iris 1 and 2, the alias `t` on 1 (a split and a shadow need a second version)."""
    registry = Registry(LocalStore(tmp_path / "store"))
    onnx = onnx_factory.linear_classifier(tmp_path / "linear.onnx")
    for version in ("1", "2"):
        registry.publish(onnx_factory.manifest_for(onnx, "iris", version), onnx)
    registry.set_alias("iris", "t", "1")
    return TestClient(create_app(registry.store))


ALIAS_CHANGES = [
    {"version": "2"},
    {"version": "2", "weight": 0.1},
    {"weights": {"1": 0.9, "2": 0.1}},
    {"version": None, "weights": {"1": 0.5, "2": 0.5}},
    {},
    {"version": "2", "weights": {"2": 1}},
    {"weight": 0.1},
    {"weights": {"2": 1}, "weight": 0.5},
    {"version": "2", "weight": 0},
    {"version": "2", "weight": 1},
    {"version": ""},  # a version's rule, as in a path
    {"version": "2..1"},
    {"version": "-2"},
    {"weights": {"1": 0.5, "": 0.5}},
    # kept to 6 places, refused past them: documented as (0, 1) before (api hunt)
    {"version": "2", "weight": 1e-7},
    {"version": "2", "weight": 0.9999999},
    {"version": "2", "weight": 1e-6},
]


@pytest.mark.parametrize("change", ALIAS_CHANGES, ids=repr)
def test_the_documented_alias_change_forms_are_the_servers(
    two_versions: TestClient, change: dict[str, object]
) -> None:
    """Either a version (and a weight in (0, 1)) or weights: schemathesis sent both."""
    document = two_versions.get("/openapi.json").json()
    schema = {"components": document["components"], "$ref": "#/components/schemas/AliasChange"}
    documented = jsonschema.Draft202012Validator(schema).is_valid(change)
    answer = two_versions.put("/control/models/iris/aliases/t", json=change)
    assert answer.status_code in (200, 400, 422), answer.text
    assert documented == (answer.status_code == 200), answer.text


@pytest.mark.parametrize(
    ("version", "sample"),
    [("2", 0.5), ("2", 1), ("2", 0), ("2", 1.5), ("2", -1), ("", 0.5), ("2", 1e-7), ("2", 1e-6)],
)
def test_the_documented_shadow_sample_is_the_servers(
    two_versions: TestClient, version: str, sample: float
) -> None:
    schema = two_versions.get("/openapi.json").json()["components"]["schemas"]["ShadowSpec"]
    shadow = {"version": version, "sample": sample}
    documented = jsonschema.Draft202012Validator(schema).is_valid(shadow)
    answer = two_versions.put("/control/models/iris/aliases/t/shadow", json=shadow)
    assert answer.status_code in (200, 400, 422), answer.text
    assert documented == (answer.status_code == 200), answer.text


def test_a_documented_job_file_is_one_the_server_takes(client: TestClient) -> None:
    """`{file}` was documented up to 1024 characters while the server bounds the whole key
    batch/<model>/input/<file>: a 1019-character name was refused (api hunt); and a job's
    `file` in a POST body was documented as any string, "" and "../x" refused."""
    document = client.get("/openapi.json").json()
    route = document["paths"]["/control/batch/{model}/jobs/{file}"]["get"]
    (file,) = [p for p in route["parameters"] if p["name"] == "file"]
    assert file["schema"]["maxLength"] == names.MAX_JOB_FILE
    part = "f" * 200 + "/"  # parts of 255 characters at most
    longest = (part * 5)[: names.MAX_JOB_FILE - 4] + ".csv"  # as long as any model's allows
    assert client.get(f"/control/batch/iris/jobs/{longest}").status_code == 404  # no such job
    schema = document["components"]["schemas"]["JobSource"]["properties"]["file"]
    validator = jsonschema.Draft202012Validator(schema)
    for name in ("", "../x", ".tmp-x", "a//b"):
        assert not validator.is_valid(name), name
        body = {"source": "uploads/x.csv", "file": name}
        assert client.post("/control/batch/iris/jobs", json=body).status_code == 400, name
    assert validator.is_valid("2026/nightly.csv") and validator.is_valid(longest)
    assert not validator.is_valid("f/" + longest)


def test_a_repeated_query_parameter_is_a_400(client: TestClient) -> None:
    # No route takes a list: `?limit=1&limit=500` was answered with 500-item pages, unsaid.
    answer = client.get("/control/models?limit=1&limit=500")
    assert answer.status_code == 400
    assert answer.json() == {"error": "query parameter 'limit' is given 2 times; give it once"}
    assert client.get("/control/models?limit=1").status_code == 200
