"""Control-plane error messages under a running `aiaas serve`, over HTTP: a message quoting what
the caller sent is bounded (a 1 MB label, field name or setting gave a 1 MB error), and a few
messages say what is actually wrong (empty `weights`, a second DELETE of an alias, a rollback
of a deleted alias whose version was deleted since). Control hunt, findings 5 and 6.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_serve import ServeProcess, start_serve

MODEL = "m"
BASE = f"/control/models/{MODEL}"
DATA = f"batch/{MODEL}/input/rows.csv"
LONG = "L" * 1_000_000
CUT = "... (1000000 characters)"  # how `names.shown` says a 1 MB value was cut
LIMIT = 2_500  # bytes of an error body, whatever was sent (`names.shown_message`: ~2,000)
ACTOR = "unauthenticated@127.0.0.1"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-control-messages")
    store = LocalStore(root / "store")
    registry = Registry(store)
    for version in ("1", "2", "3", "4", "5"):
        path = onnx_factory.linear_classifier(root / f"{version}.onnx", seed=int(version))
        manifest = onnx_factory.manifest_for(path, MODEL, version, labels=("a", "b", "c"))
        registry.publish(manifest, path)
    registry.set_alias(MODEL, "production", "1")
    store.put_bytes(DATA, b"x_0,x_1,x_2,x_3,y\n1,2,3,4,a\n")
    wide = ",".join(["x_0", "x_1", "x_2", "x_3", "C" * 1_000_000]) + "\n1,2,3,4,a\n"
    store.put_bytes(f"batch/{MODEL}/input/wide.csv", wide.encode())
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServeProcess]:
    yield from start_serve(root / "store")


@pytest.fixture
def client(server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=60) as client:
        yield client


def sent(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    """`body` as JSON, sent whole (httpx's `json=` would do; this says the size is ours)."""
    data = json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    return client.request(method, path, content=data, headers=headers)


PLAN = {"steps": [0.5, 1], "bake_s": 60, "max_error_rate": 0.01}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "said"),
    [
        (
            "POST",
            f"{BASE}/compare",
            {"a": "1", "b": "2", "data": DATA, "label": LONG},
            400,
            [f"{DATA}: no column 'LLLL", f"{CUT} to read labels from; its columns: x_0, x_1"],
        ),
        (
            "PUT",
            f"{BASE}/aliases/x",
            {"version": "1", LONG: 1},
            422,
            ["invalid request: 'LLLL", f"{CUT}: Extra inputs are not permitted"],
        ),
        (
            "PUT",
            f"{BASE}/aliases/production/shadow",
            {"version": "2", "sample": 0.5, LONG: 1},
            422,
            [f"{CUT}: Extra inputs are not permitted"],
        ),
        (
            "POST",
            f"{BASE}/rollouts",
            {"version": "3", "plan": {**PLAN, LONG: 1}},
            400,
            ["unknown rollout settings ['LLLL", f"{CUT}]; known: ['bake_s', "],
        ),
        (
            "POST",
            f"{BASE}/rollouts",
            {"version": "3", "plan": {**PLAN, "bake_s": LONG}},
            400,
            ["bake must be a number; got 'LLLL", CUT],
        ),
        (
            "POST",
            f"{BASE}/aliases/production/rollback?to=2",
            {"to": LONG},
            400,
            ["rollback names two versions: ?to=2 and a body's to 'LLLL", CUT],
        ),
        (
            "POST",
            "/control/batch/m/jobs",
            {"source": LONG},
            400,
            ["source 'LLLL", f"{CUT} must be a store key under 'uploads/'"],
        ),
    ],
    ids=["compare-label", "alias-field", "shadow-field", "plan-setting", "bake", "to", "source"],
)
def test_an_error_quoting_a_long_value_cuts_it(
    client: httpx.Client, method: str, path: str, body: Any, status: int, said: list[str]
) -> None:
    answer = sent(client, method, path, body)
    assert answer.status_code == status, answer.text[:300]
    assert len(answer.content) < LIMIT, answer.text[:300]
    message = answer.json()["error"]
    for part in said:
        assert part in message


def test_an_error_naming_many_fields_lists_a_few(client: httpx.Client) -> None:
    fields = {f"k{i}": 1 for i in range(100_000)}
    answer = sent(client, "PUT", f"{BASE}/aliases/x", {"version": "1", **fields})
    assert answer.status_code == 422 and len(answer.content) < LIMIT, answer.text[:300]
    listed = "; ".join(f"k{i}: Extra inputs are not permitted" for i in range(10))
    assert answer.json() == {"error": f"invalid request: {listed}; and 99990 more"}

    split = {str(i): 0.5 for i in range(100_000)}
    answer = sent(client, "PUT", f"{BASE}/aliases/x", {"weights": split})
    assert (answer.status_code, answer.json()) == (
        400,
        {
            "error": "an alias splits traffic between at most 2 versions; got 100000 "
            "(0, 1, 2, 3, 4 and 99995 more)"
        },
    )

    query = "&".join(f"q{i}=1" for i in range(2_000))
    answer = client.get(f"/control/models?{query}")
    assert answer.status_code == 400 and len(answer.content) < LIMIT, answer.text[:300]
    assert answer.json()["error"].startswith(
        "unknown query parameters 'q0', 'q1', 'q2', 'q3', 'q4', 'q5', 'q6', 'q7', 'q8', 'q9' "
        "and 1990 more: GET /control/models takes only after, limit"
    )


def test_any_error_message_is_bounded_where_it_is_answered(client: httpx.Client) -> None:
    """A message no one cut at its source (a file's 1 MB column name, listed among its
    columns) is cut where every control-plane error is answered."""
    body = {"a": "1", "b": "2", "data": f"batch/{MODEL}/input/wide.csv", "label": "y"}
    answer = sent(client, "POST", f"{BASE}/compare", body)
    assert answer.status_code == 400 and len(answer.content) < LIMIT, answer.text[:300]
    message = answer.json()["error"]
    assert message.startswith(
        f"batch/{MODEL}/input/wide.csv: no column 'y' to read labels from; its columns: "
        f"x_0, x_1, x_2, x_3, {'C' * 200}... (1000000 characters)"
    )


def test_empty_weights_are_told_they_name_no_version(client: httpx.Client) -> None:
    answer = sent(client, "PUT", f"{BASE}/aliases/production", {"weights": {}})
    assert (answer.status_code, answer.json()) == (
        400,
        {
            "error": 'weights names no version: name one at weight 1 ({"2": 1}) or two adding '
            'up to 1 ({"1": 0.9, "2": 0.1})'
        },
    )
    assert client.get(f"{BASE}/aliases/production").json()["version"] == "1"


def test_a_second_delete_of_an_alias_says_who_deleted_it(client: httpx.Client) -> None:
    assert sent(client, "PUT", f"{BASE}/aliases/stage", {"version": "3"}).status_code == 201
    assert client.delete(f"{BASE}/aliases/stage").json() == {"deleted": f"{MODEL}@stage"}
    read, again = client.get(f"{BASE}/aliases/stage"), client.delete(f"{BASE}/aliases/stage")
    assert read.status_code == again.status_code == 404
    assert again.json() == read.json()
    message = again.json()["error"]
    assert message.startswith(f"alias 'stage' of model '{MODEL}' was deleted by {ACTOR} at ")
    assert message.endswith("(it pointed at 3); roll it back to restore it")
    never = client.delete(f"{BASE}/aliases/never")
    assert (never.status_code, never.json()) == (
        404,
        {"error": f"alias 'never' of model '{MODEL}' not found"},
    )


def test_a_deleted_alias_whose_version_was_deleted_since_says_so(client: httpx.Client) -> None:
    assert sent(client, "PUT", f"{BASE}/aliases/old", {"version": "2"}).status_code == 201
    assert client.delete(f"{BASE}/aliases/old").status_code == 200
    assert client.delete(f"{BASE}/versions/2").json() == {"deleted": f"{MODEL}:2"}

    rolled = client.post(f"{BASE}/aliases/old/rollback")
    assert rolled.status_code == 409, rolled.text
    message = rolled.json()["error"]
    assert message.startswith(
        f"alias 'old' of model '{MODEL}' cannot be restored: it pointed at 2 when {ACTOR} "
        "deleted it at "
    )
    assert f", and version '2' was deleted since (by {ACTOR} at " in message
    assert message.endswith(
        f"; promote a published version to it (`aiaas promote {MODEL} VERSION --alias old`)"
    )
    assert "while alias" not in message  # no race happened
    read = client.get(f"{BASE}/aliases/old")
    assert read.status_code == 404
    assert read.json()["error"].endswith(
        f"(it pointed at 2); version '2' was deleted since (by {ACTOR} at "
        + message.split(f"(by {ACTOR} at ", 1)[1].split(")", 1)[0]
        + f"): promote a published version to it (`aiaas promote {MODEL} VERSION --alias old`)"
    )
    promoted = sent(client, "PUT", f"{BASE}/aliases/old", {"version": "5"})
    assert (promoted.status_code, promoted.json()["version"]) == (201, "5")


def test_a_deleted_alias_whose_shadow_was_deleted_since_is_restored_without_it(
    client: httpx.Client,
) -> None:
    assert sent(client, "PUT", f"{BASE}/aliases/shadowed", {"version": "3"}).status_code == 201
    shadow = {"version": "4", "sample": 0.5}
    assert sent(client, "PUT", f"{BASE}/aliases/shadowed/shadow", shadow).status_code == 200
    assert client.delete(f"{BASE}/aliases/shadowed").status_code == 200
    assert client.delete(f"{BASE}/versions/4").json() == {"deleted": f"{MODEL}:4"}
    rolled = client.post(f"{BASE}/aliases/shadowed/rollback")
    assert rolled.status_code == 200, rolled.text
    assert (rolled.json()["version"], rolled.json()["shadow"]) == ("3", None)
