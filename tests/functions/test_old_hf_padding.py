"""A Hugging Face text model published before serving honoured tokenizer.json's padding
(274ab44, 2026-12-02: its manifest has no `padding`) is served as it was then: right-padded to
the longest row, whatever padding its file saves. Its publish checked the model on that padding
only; padded as the file says, a 20-position BERT whose file pads to a multiple of 8 failed
every batch holding a 20-token text (a 422), and one whose file pads on the left answered a
short text by what else its request held.

The manifest is 274ab44's own `aiaas publish --tokenizer` of tests/hf_transformer.py's model
(20 positions); the file is rebuilt here with the tokenizer embedded as that publish embeds it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tokenizers import Tokenizer

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.hf_tokenizer import METADATA_KEY
from functions.runtime.manifest import ModelManifest
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.publish_text import embed_document
from tests import hf_transformer, onnx_factory
from tests.functions.test_predict_events import body_of, http_event

GOLDEN = (
    Path(__file__).resolve().parents[1]
    / "fixtures/old_stores/274ab44/models/hf-old/versions/1/manifest.json"
)
LONG = " ".join(["where is my parcel"] * 10)  # past the 20 positions: cut to 20 tokens


def predict(root: Path, padding: dict[str, Any], texts: list[str]) -> tuple[int, Any]:
    model = hf_transformer.transformer(root / "plain.onnx", positions=20)
    own = Tokenizer.from_file(str(hf_transformer.tokenizer_json(root / "t.json")))
    own.enable_padding(pad_id=0, pad_token="[PAD]", **padding)
    embed_document(model, root / "model.onnx", METADATA_KEY, own.to_str())
    golden = ModelManifest.from_dict(json.loads(GOLDEN.read_text()))
    file = onnx_factory.manifest_for(root / "model.onnx", "hf-old", "1").file
    manifest = dataclasses.replace(golden, file=file, files=())
    store = LocalStore(root / "store")
    Registry(store).publish(manifest, root / "model.onnx")
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    service = service_from_env({"AIAAS_MODEL": "hf-old"}, pool)
    body = json.dumps({"inputs": texts})
    answer = service.handle(http_event("POST", "/models/hf-old/predict", body))
    return answer["statusCode"], body_of(answer)


@pytest.mark.parametrize(
    "padding", [{"pad_to_multiple_of": 8}, {"direction": "left"}, {"length": 24}]
)
def test_served_as_before_whatever_padding_its_file_saves(
    tmp_path: Path, padding: dict[str, Any]
) -> None:
    status, alone = predict(tmp_path / "alone", {}, ["where is", LONG])
    assert status == 200, alone
    status, body = predict(tmp_path / "saved", padding, ["where is", LONG])
    assert status == 200, body
    np.testing.assert_allclose(body["outputs"]["logits"], alone["outputs"]["logits"], atol=1e-5)
