"""`aiaas serve` on S3: the functions of one process share one S3 client, and a reset holds.

Each function has its own store (bucket, prefix), but a botocore client costs 0.1-0.25 s of CPU
and ~12 MiB to build: a serve of 20 models built 20 identical ones (docs/benchmarks/serve.md,
"Start-up on an S3 store"). The real predict and health functions run in-process behind the
gateway, on moto's S3 server.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from typing import Any

import pytest

from functions.runtime.refs import manifest_key
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store, make_s3_client
from infra.cli.local_commands import local_overrides
from infra.local.functions import function_instances
from infra.local.gateway import Gateway
from infra.local.stack import predict_logical_id, stack_functions
from tests.infra.test_gateway import doc, request
from tests.publishing import publish_linear
from tests.s3server import MotoServer

MODELS = ("left", "right")


@pytest.fixture(scope="module")
def served(moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    root = tmp_path_factory.mktemp("shared-client")
    bucket = f"aiaas-shared-{uuid.uuid4().hex[:8]}"
    make_s3_client().create_bucket(Bucket=bucket)
    registry = Registry(S3Store(bucket, "registry"))
    for seed, name in enumerate(MODELS):
        publish_linear(registry, root, name, "1", seed=seed)
    # The functions' variables as `aiaas serve` gives them (AWS_* passed through).
    env = local_overrides(
        f"s3://{bucket}/registry",
        {"AIAAS_CACHE_DIR": str(root / "cache"), "AIAAS_DISABLE_METRICS": "true"},
    )
    return Gateway(function_instances(stack_functions(MODELS, ""), env))


def predict(gateway: Gateway, model: str) -> Any:
    body = json.dumps({"inputs": [[1.0, 2.0, 3.0, 4.0]]}).encode()
    answer = gateway.handle(
        request("POST", f"/models/{model}/predict", body, content_type="application/json")
    )
    assert answer.status == 200, answer.body
    return doc(answer)


def store_of(gateway: Gateway, function: str) -> S3Store:
    module = gateway.functions[function].handler.__globals__  # its init runs here
    store = (
        module["SERVICE"].served.pool.registry.store
        if "SERVICE" in module
        else module["REGISTRY"].store
    )
    assert isinstance(store, S3Store)
    return store


def test_the_functions_of_one_serve_share_one_client(served: Gateway) -> None:
    for model in MODELS:
        predict(served, model)
    left, right = (store_of(served, predict_logical_id(m)) for m in MODELS)
    health = store_of(served, "Health")
    assert left is not right  # each function keeps its own store (and init, and model)
    assert left.client is right.client is health.client
    assert doc(served.handle(request("GET", "/v2/health/ready"))) == {"ready": True}


def test_a_reset_rebuilds_that_store_s_client_and_leaves_the_others_working(
    served: Gateway,
) -> None:
    left, right = (store_of(served, predict_logical_id(m)) for m in MODELS)
    old = right.client
    assert left.client is old
    left.reset_client()  # as after a SnapStart restore
    # The others keep the old client, unclosed: a request in flight on it finishes.
    assert right.client is old
    assert right.exists(manifest_key("right", "1"))
    fresh = left.client
    assert fresh is not old
    assert left.exists(manifest_key("left", "1"))
    # The process's next store gets the rebuilt client, not the one reset.
    assert S3Store(left.bucket, "registry").client is fresh
    for model in MODELS:
        assert predict(served, model)["model"] == model


def test_a_forked_process_builds_its_own_client(served: Gateway) -> None:
    # granian's workers and the batch's worker processes may be forked after the parent used
    # S3: a client inherited from it would share its pooled sockets with the parent and with
    # every sibling.
    parent = store_of(served, predict_logical_id(MODELS[0]))
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit status only
        signal.alarm(30)  # a lock some parent thread held at the fork fails the test, not hangs
        mine = S3Store(parent.bucket, "registry").client
        os._exit(0 if mine is not parent.client and S3Store(parent.bucket).client is mine else 1)
    assert os.waitpid(child, 0)[1] == 0
