"""GET /models/{name}/tokenizer of a tokenizer.json over what a Lambda response holds (6 MB: a
250k-token multilingual one) names where to read it, not "fewer rows or fewer outputs".

The limit is lowered to below the test tokenizer's size rather than building a 6 MB one."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.predict import http
from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from tests.functions.test_predict_events import body_of, http_event
from tests.infra.test_publish_tokenizer import MODEL, published_text_model


def test_a_tokenizer_over_the_response_limit_is_read_from_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = published_text_model(tmp_path)
    pool = ModelPool(Registry(built.store), ArtifactCache(built.store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": MODEL}, pool)
    size = built.tokenizer.stat().st_size
    monkeypatch.setattr(http, "MAX_RESPONSE_BYTES", size // 2)
    for path in (f"/models/{MODEL}/tokenizer", f"/models/{MODEL}/versions/1/tokenizer"):
        answer = service.handle(http_event("GET", path, None))
        assert (answer["statusCode"], body_of(answer)) == (
            413,
            {
                "error": f"model {MODEL}:1's tokenizer.json is {size} bytes, more than a "
                f"response holds ({size // 2} bytes, AWS Lambda's limit): read it from the "
                f"registry, models/{MODEL}/versions/1/tokenizer.json"
            },
        )
