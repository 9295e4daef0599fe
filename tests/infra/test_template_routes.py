"""Every function in template.yaml imports, and every route it declares is answered by its
function through the local gateway, on a published model (explain included)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from bench.models import publish_mlp
from functions.runtime.explain.background import BACKGROUND_FILE, summarize
from infra.local.functions import function_instances
from infra.local.gateway import Gateway, GatewayRequest
from infra.template import functions, load_template


def test_every_handler_imports_and_is_callable(tmp_path: Path) -> None:
    from infra.local.functions import load_handler

    specs = functions(load_template())
    for spec in specs.values():
        env = {"AIAAS_STORE": str(tmp_path / "store"), "AIAAS_DISABLE_METRICS": "true"}
        if spec.handler.startswith("functions.predict."):
            continue  # loads its model at init: imported with a published model below
        assert callable(load_handler(spec.handler, env)), spec.handler


ROWS = (np.arange(2 * 64, dtype=np.float32).reshape(2, 64) % 17).tolist()
INFER = {"inputs": [{"name": "x", "shape": [2, 64], "datatype": "FP32", "data": ROWS}]}


def request_for(method: str, path: str) -> GatewayRequest:
    concrete = path.replace("{version}", "1").replace("{proxy+}", "models")
    body = b""
    if concrete.endswith("/predict"):
        body = orjson.dumps({"inputs": ROWS})
    elif concrete.endswith("/explain"):
        explain = INFER if concrete.startswith("/v2/") else {"inputs": ROWS}
        body = orjson.dumps({**explain, "parameters": {"samples": 128}})
    elif concrete.endswith("/infer"):
        body = orjson.dumps(INFER)
    return GatewayRequest(method, concrete, "", [("content-type", "application/json")], body)


def test_every_template_route_is_answered_by_its_function(tmp_path: Path) -> None:
    store = tmp_path / "store"
    publish_mlp(store, "digits-mlp")
    background = summarize(np.random.default_rng(0).random((40, 64)), clusters=4)
    (store / "models/digits-mlp/versions/1" / BACKGROUND_FILE).write_text(background.to_json())
    specs = functions(load_template(), {"ModelNames": ["digits-mlp"]})
    env = {
        "AIAAS_STORE": str(store),
        "AIAAS_DISABLE_METRICS": "true",
        "AIAAS_CACHE_DIR": str(tmp_path / "cache"),
    }
    gateway = Gateway(function_instances(specs, env))
    routes = [(s.logical_id, r) for s in specs.values() for r in s.routes]
    assert len(routes) == 12 + 3 + 2 + 6  # the control plane: one route a method, not ANY
    for logical_id, route in routes:
        response = gateway.handle(request_for(route.method, route.path))
        if route.method in ("POST", "PUT", "DELETE", "PATCH") and route.path == "/control/{proxy+}":
            # reached the control plane, which says /control/models takes GET (not a 404)
            assert response.status == 405, (logical_id, route, response.body[:300])
            continue
        if route.method == "HEAD":
            assert (response.status, response.body) == (200, b""), (logical_id, route)
            continue
        if route.path.endswith("/tokenizer"):  # a numeric model: its function says why not
            assert response.status == 404, (logical_id, route, response.body[:300])
            assert b"takes no raw text, so it has no tokenizer" in response.body
            continue
        assert response.status == 200, (logical_id, route, response.body[:300])
        body = (
            orjson.loads(response.body)
            if "json" in dict(response.headers)["content-type"]
            else None
        )
        if route.path.endswith("/explain"):
            assert body["model" if "v2" not in route.path else "model_name"] == "digits-mlp"
        if route.path.endswith(("/predict", "/infer")):
            assert body["model_name" if "infer" in route.path else "model"] == "digits-mlp"
        if route.path == "/control/{proxy+}":
            assert body["models"][0]["name"] == "digits-mlp"
