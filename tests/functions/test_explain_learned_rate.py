"""The time per model row an explainer learns for its next estimate, through the predict
handler's explain route on a real text model (token ids, the old intents-transformer's
signature): a tiny explanation teaches nothing, and one slowed by other requests sharing the
cores does not get the next one refused, so a request that just succeeded is not a 422 on retry."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.explain.explainer import ModelTarget
from functions.runtime.manifest import ModelManifest
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_old_text_models import GOLDEN, NAME, token_model
from tests.functions.test_predict_events import body_of, http_event

LIMIT = "1"  # seconds; a 20-token text takes a few ms on this tiny model


@pytest.fixture()
def service(tmp_path: Path) -> PredictService:
    path = token_model(tmp_path / "model.onnx")
    golden = ModelManifest.from_dict(json.loads(GOLDEN.read_text()))
    manifest = dataclasses.replace(golden, file=onnx_factory.manifest_for(path, NAME, "1").file)
    store = LocalStore(tmp_path / "store")
    Registry(store).publish(manifest, path)
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    return service_from_env({"AIAAS_MODEL": NAME, "AIAAS_EXPLAIN_MAX_SECONDS": LIMIT}, pool)


def explain(service: PredictService, ids: list[int]) -> tuple[int, Any]:
    body = json.dumps({"inputs": {"tokens": [ids]}})
    answer = service.handle(http_event("POST", f"/models/{NAME}/explain", body))
    return answer["statusCode"], body_of(answer)


def test_a_one_token_text_does_not_get_the_next_long_one_refused(
    service: PredictService,
) -> None:
    long = list(range(5, 25))  # 20 tokens: 2,088 coalitions, sampled
    assert explain(service, long)[0] == 200
    status, doc = explain(service, [7])  # 1 token: 2 model rows, mostly call overhead
    assert status == 200, doc
    for _ in range(3):  # its overhead per token was taken as the model's: "about 4 s"
        status, doc = explain(service, long)
        assert status == 200, doc
        assert len(doc["explanations"][0]["attributions"]) == 20 or doc


def test_an_explanation_slowed_by_other_requests_does_not_get_the_next_refused(
    service: PredictService, monkeypatch: pytest.MonkeyPatch
) -> None:
    long = list(range(5, 25))
    assert explain(service, long)[0] == 200
    score = ModelTarget.score_feeds

    def crowded(self: ModelTarget, feeds: dict[str, Any], count: int) -> Any:
        time.sleep(1.5)  # the cores taken by other requests: wall time, not the model's
        return score(self, feeds, count)

    monkeypatch.setattr(ModelTarget, "score_feeds", crowded)
    assert explain(service, long)[0] == 200  # estimated before it ran: it fit
    monkeypatch.undo()
    status, doc = explain(service, long)  # its 1.5 s was taken as the model's: "about 1.5 s"
    assert status == 200, doc
