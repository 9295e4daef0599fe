"""A text model's texts under a deny-list naming its text field (hunt_security2 2).

Only records (`{"instances": [{"text": ...}]}`) lost the field: the form the docs give for a
text model, `{"inputs": ["..."]}`, strings as `instances`, the ids input given texts and an OIP
BYTES tensor were captured whole with `deny: ["text"]`. Real transformer and tokenizer.json,
the real predict handler, captured lines read back from the directory store.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from functions.predict.service import PredictService
from functions.predict.telemetry import RequestMetrics
from functions.runtime.cache import ArtifactCache
from functions.runtime.capture.reader import captured_lines
from functions.runtime.capture.setting import set_capture
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.served import ServedModel
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import http_event
from tests.infra.test_publish_tokenizer import published_text_model

MODEL = "tiny-bert"
PREDICT = f"/models/{MODEL}/predict"
INFER = f"/v2/models/{MODEL}/infer"
SECRET = "card 4111 1111 1111 1111 was billed twice"
IDS = [17, 23, 29]
BODIES = [
    (PREDICT, {"inputs": [SECRET, "late delivery"]}),
    (PREDICT, {"inputs": [SECRET]}),
    (PREDICT, {"instances": [SECRET]}),
    (PREDICT, {"instances": [{"text": SECRET}]}),
    (PREDICT, {"inputs": {"input_ids": [SECRET]}}),
    (INFER, {"inputs": [{"name": "input_ids", "shape": [1], "datatype": "BYTES", "data": [SECRET]}]}),
    (INFER, {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [SECRET]}]}),
    # token ids encode the text as well (the tokenizer reads them back)
    (INFER, {"inputs": [
        {"name": "input_ids", "shape": [1, 3], "datatype": "INT64", "data": IDS},
        {"name": "attention_mask", "shape": [1, 3], "datatype": "INT64", "data": [1, 1, 1]},
        {"name": "token_type_ids", "shape": [1, 3], "datatype": "INT64", "data": [0, 0, 0]},
    ]}),
]  # fmt: skip


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    published_text_model(tmp_path)
    return Registry(LocalStore(tmp_path / "store"))


def captured(registry: Registry, tmp_path: Path, deny: list[str]) -> list[dict[str, Any]]:
    set_capture(registry, MODEL, sample=1.0, deny=deny, actor="test")
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"))
    svc = PredictService(
        ServedModel(pool, MODEL, ttl=3600), metrics=RequestMetrics(out=io.StringIO())
    )
    svc.warm()  # reads the capture setting, as a container's init does
    for path, body in BODIES:
        response = svc.handle(http_event("POST", path, json.dumps(body)))
        assert response["statusCode"] == 200, (body, response["body"])
    svc.capture.buffer.close()  # lines written; its timer thread (holding the store) ends
    return list(captured_lines(registry.store, MODEL))


@pytest.mark.parametrize("deny", [["text"], ["input_ids"]])
def test_no_text_is_captured_when_its_field_is_denied(
    registry: Registry, tmp_path: Path, deny: list[str]
) -> None:
    found = captured(registry, tmp_path, deny)
    assert len(found) == len(BODIES)
    leaked = [line["request"] for line in found if SECRET in json.dumps(line)]
    assert leaked == []
    assert not [line for line in found if json.dumps(IDS)[1:-1] in json.dumps(line["request"])]
    shapes = {json.dumps(line["request"], sort_keys=True) for line in found}
    # Rows keep their places: each text a null, the other fields as sent.
    assert json.dumps({"inputs": [None, None]}) in shapes
    assert json.dumps({"instances": [None]}) in shapes
    # The export reads such lines: a row each, its text empty.
    out = tmp_path / "captured.csv"
    assert (
        main(["--store", str(registry.store.uri), "capture", "export", MODEL, "--out", str(out)])
        == 0
    )
    exported = out.read_text()
    assert SECRET not in exported and len(exported.splitlines()) == 1 + 8, exported


def test_texts_are_captured_when_no_field_of_theirs_is_denied(
    registry: Registry, tmp_path: Path
) -> None:
    found = captured(registry, tmp_path, ["email"])
    sent = [json.dumps(line["request"]) for line in found]
    assert sum(SECRET in line for line in sent) == len(BODIES) - 1  # all but the ids
    assert sum(json.dumps(IDS)[1:-1] in line for line in sent) == 1
