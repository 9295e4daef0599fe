"""Versions under a running `aiaas serve`: promote and rollback (CLI from another process, or the
control plane) take effect on the very next request; a version is reachable by its own route;
a query parameter the route does not take is a 400, not silently ignored.

The alias TTL is an hour here: nothing in these tests may switch by waiting it out.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_serve import ROOT, TOKEN, ServeProcess, start_serve

MODEL = "switch"
ROW = [[1.0, 2.0, 3.0, 4.0]]


def publish(root: Path, name: str, version: str, seed: int) -> None:
    path = onnx_factory.linear_classifier(root / f"{name}-{version}.onnx", seed=seed)
    manifest = onnx_factory.manifest_for(path, name, version, labels=("a", "b", "c"))
    Registry(LocalStore(root / "store")).publish(manifest, path)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-versions")
    publish(root, MODEL, "1", seed=1)
    publish(root, MODEL, "2", seed=2)
    Registry(LocalStore(root / "store")).set_alias(MODEL, "production", "1")
    publish(root, "newest", "1", seed=3)  # no alias: serves its newest version
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServeProcess]:
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_ALIAS_TTL": "3600"}
    yield from start_serve(root / "store", env=env, headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
def client(server: ServeProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
        yield client


def aiaas(root: Path, *argv: str) -> str:
    """The CLI in a process of its own, as a user runs it beside the server."""
    done = subprocess.run(
        [sys.executable, "-m", "infra.cli.main", "--store", str(root / "store"), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def answering(client: httpx.Client, path: str = f"/models/{MODEL}/predict") -> str:
    answer = client.post(path, json={"inputs": ROW})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["version"])


def reference_logits(root: Path, name: str, version: str) -> np.ndarray:
    session = ort.InferenceSession(str(root / f"{name}-{version}.onnx"))
    return np.asarray(session.run(None, {"x": np.array(ROW, dtype=np.float32)})[0])


# ---- promote / rollback take effect on the next request ------------------------------------


def test_cli_promote_and_rollback_switch_on_the_next_request(
    client: httpx.Client, root: Path
) -> None:
    assert answering(client) == "1"
    assert aiaas(root, "promote", MODEL, "2") == f"{MODEL}@production -> 2 (was 1)\n"
    assert answering(client) == "2"
    assert aiaas(root, "rollback", MODEL) == f"{MODEL}@production -> 1 (rolled back from 2)\n"
    assert answering(client) == "1"
    assert aiaas(root, "rollback", MODEL, "--to", "2") == (
        f"{MODEL}@production -> 2 (rolled back from 1)\n"
    )
    assert answering(client) == "2"
    aiaas(root, "promote", MODEL, "1")
    assert answering(client) == "1"


def test_control_plane_promote_and_rollback_switch_on_the_next_request(
    client: httpx.Client,
) -> None:
    aliases = f"/control/models/{MODEL}/aliases/production"
    assert client.put(aliases, json={"version": "2"}).status_code == 200
    assert answering(client) == "2"
    rolled = client.post(f"{aliases}/rollback")
    assert (rolled.status_code, rolled.json()["version"]) == (200, "1")
    assert answering(client) == "1"


def test_a_new_newest_version_is_served_on_the_next_request(
    client: httpx.Client, root: Path
) -> None:
    assert answering(client, "/models/newest/predict") == "1"
    publish(root, "newest", "2", seed=4)
    assert answering(client, "/models/newest/predict") == "2"


# ---- a version by its own route -------------------------------------------------------------


def test_per_version_predict_route(client: httpx.Client, root: Path) -> None:
    for version in ("1", "2"):
        answer = client.post(
            f"/models/{MODEL}/versions/{version}/predict", params={"top_k": 2}, json={"inputs": ROW}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["model"], body["version"]) == (MODEL, version)
        assert len(body["predictions"][0]["top_k"]) == 2
        np.testing.assert_allclose(
            body["outputs"]["logits"], reference_logits(root, MODEL, version), rtol=1e-5
        )


@pytest.mark.parametrize(
    ("version", "status", "message"),
    [
        ("7", 404, f"version '7' of model '{MODEL}' not found"),
        ("%2e%2e", 400, "invalid version '..'"),
    ],
)
def test_per_version_predict_route_errors(
    client: httpx.Client, version: str, status: int, message: str
) -> None:
    answer = client.post(f"/models/{MODEL}/versions/{version}/predict", json={"inputs": ROW})
    assert answer.status_code == status
    assert answer.json()["error"].startswith(message)


# ---- query parameters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            f"/models/{MODEL}/predict?version=2",
            {"inputs": ROW},
            f"unknown query parameter 'version': POST /models/{MODEL}/predict takes only "
            f"top_k; to use a given version, POST /models/{MODEL}/versions/{{version}}/predict",
        ),
        (
            f"/v2/models/{MODEL}/infer?version=2",
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": ROW[0]}]},
            f"unknown query parameter 'version': POST /v2/models/{MODEL}/infer takes no query "
            f"parameters; to use a given version, POST /v2/models/{MODEL}/versions/{{version}}/infer",
        ),
        (
            f"/models/{MODEL}/predict?top_k=2&topk=3",
            {"inputs": ROW},
            f"unknown query parameter 'topk': POST /models/{MODEL}/predict takes only top_k",
        ),
    ],
)
def test_unknown_query_parameters_are_400(
    client: httpx.Client, path: str, body: object, message: str
) -> None:
    answer = client.post(path, json=body)
    assert (answer.status_code, answer.json()) == (400, {"error": message})


def test_known_query_parameters_still_work(client: httpx.Client) -> None:
    answer = client.post(f"/models/{MODEL}/predict", params={"top_k": 3}, json={"inputs": ROW})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"][0]["top_k"]) == 3
