"""A model whose folder is deleted by hand under a running `aiaas serve` stops being served at
once, and its series leave `/metrics` once idle.

Found soaking serve (`rm -rf store/models/x*`, `--workers 2`, AIAAS_ALIAS_TTL=5): calls 6, 11
and ~30 s later still answered 200 from memory (no write through the store bumped the number
that keeps a stamp without a system call, so only the alias TTL saw it, and the request that
saw it was still answered from memory), and the removed models' series stayed for good (no
prune record names their versions). There is no delete command for a whole model."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import orjson

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_serve import TOKEN, start_serve
from tests.infra.test_serve_metrics import AUTH

JSON_AUTH = {**AUTH, "content-type": "application/json"}
BODY = orjson.dumps({"inputs": [[0.5] * 4]})
RECHECK_S = 1.0  # functions/runtime/stamps.py: a kept stamp is read again this often


def call(base: str, model: str) -> httpx.Response:
    return httpx.post(f"{base}/models/{model}/predict", content=BODY, headers=JSON_AUTH, timeout=30)


def series_of(base: str, model: str) -> list[str]:
    text = httpx.get(f"{base}/metrics", headers=AUTH, timeout=10).text
    return [line for line in text.splitlines() if f'model="{model}"' in line]


def test_a_model_deleted_by_hand_answers_404_at_once_and_its_series_go(tmp_path: Path) -> None:
    store = tmp_path / "store"
    registry = Registry(LocalStore(store))
    for model in ("gone", "kept"):
        path = onnx_factory.linear_classifier(tmp_path / f"{model}.onnx", seed=1)
        registry.publish(onnx_factory.manifest_for(path, model, "1"), path)
        registry.set_alias(model, "production", "1")
    env = {
        "AIAAS_API_TOKEN": TOKEN,
        "AIAAS_ALIAS_TTL": "600",  # the TTL would see it only after this
        "AIAAS_METRICS_GONE_AFTER_S": "1",
    }
    for server in start_serve(store, "--models", "gone,kept", env=env, headers=AUTH):
        for _ in range(3):  # warm: each stamp kept, as a server under traffic has them
            assert call(server.base, "gone").status_code == 200
            assert call(server.base, "kept").status_code == 200
        shutil.rmtree(store / "models" / "gone")
        time.sleep(RECHECK_S + 0.2)
        answer = call(server.base, "gone")
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"].startswith("application/json")
        assert "'gone'" in answer.json()["error"], answer.json()
        assert call(server.base, "gone").status_code == 404
        pinned = httpx.post(
            f"{server.base}/models/gone/versions/1/predict",
            content=BODY,
            headers=JSON_AUTH,
            timeout=30,
        )
        assert pinned.status_code == 404, pinned.text
        assert call(server.base, "kept").status_code == 200

        assert series_of(server.base, "gone")  # still changing: the 404s are counted
        deadline = time.monotonic() + 20
        while series_of(server.base, "gone"):  # idle for AIAAS_METRICS_GONE_AFTER_S: left out
            assert time.monotonic() < deadline, series_of(server.base, "gone")
            time.sleep(0.3)
        assert series_of(server.base, "kept")
        assert call(server.base, "kept").status_code == 200
