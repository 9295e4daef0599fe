"""The list routes in pages (`limit`, `after`, `next`), over S3 on moto's server, and the store
requests a listing costs: a model with hundreds of versions made a HEAD per version, twice,
for GET /control/models (about 3-7 s for 200 versions on loopback; API Gateway gives up at 30 s)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from tests import onnx_factory

VERSIONS = 25
BUCKET = f"aiaas-list-bounds-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def served(
    moto_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TestClient, S3Store]:
    from functions.runtime.s3store import make_s3_client

    make_s3_client().create_bucket(Bucket=BUCKET)
    store = S3Store(BUCKET, "registry")
    registry = Registry(store)
    onnx = onnx_factory.linear_classifier(tmp_path_factory.mktemp("bounds") / "linear.onnx")
    for name, count in (("iris", VERSIONS), ("alpha", 1), ("beta", 1), ("gamma", 1)):
        for version in range(1, count + 1):
            registry.publish(onnx_factory.manifest_for(onnx, name, str(version)), onnx)
    store.put_bytes("models/half/versions/1/model.onnx", b"an interrupted first publish")
    for file in ("a.csv", "b.csv", "c.csv"):
        store.put_bytes(f"batch/iris/input/{file}", b"x_0,x_1,x_2,x_3\n1,2,3,4\n")
    return TestClient(create_app(store)), store


def pages(client: TestClient, path: str, field: str, limit: int) -> list[list[Any]]:
    found, after = [], None
    while True:
        query = {"limit": limit} if after is None else {"limit": limit, "after": after}
        answer = client.get(path, params=query)
        assert answer.status_code == 200, answer.text
        found.append(answer.json()[field])
        after = answer.json()["next"]
        if after is None:
            return found


def test_versions_come_in_pages_in_version_order(served: tuple[TestClient, S3Store]) -> None:
    client, _ = served
    got = pages(client, "/control/models/iris", "versions", 10)
    assert got == [[str(v) for v in range(s, min(s + 10, VERSIONS + 1))] for s in (1, 11, 21)]
    assert client.get("/control/models/iris").json()["next"] is None  # all, by default


def test_models_and_jobs_come_in_pages(served: tuple[TestClient, S3Store]) -> None:
    client, _ = served
    models = pages(client, "/control/models", "models", 2)
    # `half` (no manifest yet) is no model: left out before paging, so no page is short of it
    assert [[m["name"] for m in one] for one in models] == [["alpha", "beta"], ["gamma", "iris"]]
    jobs = pages(client, "/control/batch/iris/jobs", "jobs", 2)
    assert [[j["file"] for j in one] for one in jobs] == [["a.csv", "b.csv"], ["c.csv"]]
    before = client.get("/control/batch/iris/jobs", params={"after": "../x"})
    assert [j["file"] for j in before.json()["jobs"]] == ["a.csv", "b.csv", "c.csv"]


@pytest.mark.parametrize(
    ("path", "query", "status", "error"),
    [
        ("/control/models", {"limit": 0}, 422, "query.limit: Input should be greater than"),
        ("/control/models/iris", {"limit": 1001}, 422, "query.limit: Input should be less than"),
        ("/control/models/iris", {"after": "../1"}, 400, "invalid version '../1'"),
        ("/control/models", {"after": "Bad!"}, 400, "invalid model name 'Bad!'"),
        # a job list's `after` is a place in the folder (`../x`: before `a.csv`), of bounded size
        ("/control/batch/iris/jobs", {"after": ""}, 400, "after has 0 characters"),
        ("/control/batch/iris/jobs", {"after": "x" * 4097}, 400, "after has 4097 characters"),
    ],
)
def test_a_bad_bound_is_a_4xx_naming_it(
    served: tuple[TestClient, S3Store], path: str, query: dict[str, Any], status: int, error: str
) -> None:
    answer = served[0].get(path, params=query)
    assert answer.status_code == status
    assert error in answer.json()["error"]


def test_listing_a_model_costs_store_requests_independent_of_its_versions(
    served: tuple[TestClient, S3Store],
) -> None:
    client, store = served
    calls: list[str] = []
    count = lambda model, **_: calls.append(model.name)  # noqa: E731
    store.client.meta.events.register("before-parameter-build.s3", count)
    try:
        assert client.get("/control/models/iris").status_code == 200
        detail = list(calls)
        calls.clear()
        assert client.get("/control/models").status_code == 200
    finally:
        store.client.meta.events.unregister("before-parameter-build.s3", count)
    assert len(detail) <= 3, detail  # versions, aliases: listings, not a HEAD per version
    assert calls == ["ListObjectsV2"], calls  # one walk of the store, not listings a model


def test_mixed_versions_page_in_the_registry_order_none_skipped(
    served: tuple[TestClient, S3Store], tmp_path: Any
) -> None:
    # Named versions first (by text), then numbers by value; `03` and `3` are both 3: a page
    # ending at `03` skipped `3`, its cursor sorting past both.
    mixed = S3Store(BUCKET, "mixed")
    onnx = onnx_factory.linear_classifier(tmp_path / "linear.onnx")
    order = ["1.10", "1.9", "ci-903", "v2", "03", "3", "10"]
    for version in ("3", "10", "ci-903", "03", "v2", "1.9", "1.10"):
        if version == "03":  # twins only a store written before numbers were claimed holds
            mixed.delete("models/mixed/versions/.number-3")
        Registry(mixed).publish(onnx_factory.manifest_for(onnx, "mixed", version), onnx)
    client = TestClient(create_app(mixed))
    assert client.get("/control/models/mixed").json()["versions"] == order
    assert [
        v for one in pages(client, "/control/models/mixed", "versions", 1) for v in one
    ] == order
    assert client.get("/control/models").json()["models"][0]["latest"] == "10"
    assert Registry(mixed).resolve("mixed").version == "10"
