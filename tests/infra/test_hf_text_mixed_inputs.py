"""A transformer published with its tokenizer.json, sent what it cannot read as one text a row.

Text pairs (a cross-encoder's question + passage, as a Hugging Face pipeline takes them:
`{"text": ..., "text_pair": ...}`) and text sent beside the token type ids or attention mask
the tokenizer fills: each used to be answered 200 with the pair's second text or the caller's
own ids silently dropped (a wrong answer), or a 400 about "several inputs". Each is a 422 that
says what the model reads. Real HTTP (`aiaas serve`, httpx, tritonclient unchanged).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from functions.runtime.codecs import simple
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import hf_transformer
from tests.batch_support import read_jsonl, run
from tests.infra.test_publish_tokenizer import publish
from tests.infra.test_serve import ServeProcess, start_serve

MODEL = "pair-bert"
PAIR = ["where is my parcel", "it never arrived"]
NOT_PAIRS = (
    "input 'input_ids' takes one text per row, shape [N] or [N, 1]; got [1, 2]: this model "
    "reads one text a row, not pairs of texts"
)
FILLED = (
    "input '{name}' is filled from the text by the model's tokenizer; send the text alone, "
    "or token ids with it"
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    root = tmp_path_factory.mktemp("hfpairs")
    model = hf_transformer.transformer(root / "model.onnx", positions=24)
    tokenizer = hf_transformer.tokenizer_json(root / "tokenizer.json")
    store = LocalStore(root / "store")
    code, _, err = publish(store, model, "--tokenizer", str(tokenizer), name=MODEL)
    assert code == 0, err
    return store


@pytest.fixture(scope="module")
def server(store: LocalStore) -> Iterator[ServeProcess]:
    yield from start_serve(Path(store.root))


@pytest.fixture
def http(server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        yield client


def error_of(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json().get("error", answer.text)


@pytest.mark.parametrize(
    "body",
    [{"inputs": [PAIR]}, {"instances": [PAIR]}, {"inputs": {"input_ids": [PAIR]}}],
)
def test_a_pair_of_texts_in_a_row_is_a_422(http: httpx.Client, body: object) -> None:
    answer = http.post(f"/models/{MODEL}/predict", json=body)
    assert error_of(answer) == (422, NOT_PAIRS)


def test_a_text_pair_field_is_a_422_not_dropped(http: httpx.Client) -> None:
    body = {"instances": [{"text": PAIR[0], "text_pair": PAIR[1]}]}
    assert error_of(http.post(f"/models/{MODEL}/predict", json=body)) == (
        422,
        "instances[0] has a 'text_pair': this model reads one text a row (field 'text'), "
        "not pairs of texts",
    )


@pytest.mark.parametrize("name", ["token_type_ids", "attention_mask"])
def test_text_with_the_inputs_it_fills_is_a_422(http: httpx.Client, name: str) -> None:
    body = {"inputs": {"input_ids": [PAIR[0]], name: [[1] * 6]}}
    answer = http.post(f"/models/{MODEL}/predict", json=body)
    assert error_of(answer) == (422, FILLED.format(name=name))


def test_oip_pairs_and_filled_inputs_are_422s(server: ServeProcess) -> None:
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=30)
    try:
        pair = triton.InferInput("input_ids", [1, 2], "BYTES")
        pair.set_data_from_numpy(np.array([[t.encode() for t in PAIR]], dtype=object))
        with pytest.raises(InferenceServerException) as info:
            client.infer(MODEL, [pair])
        assert (info.value.status(), info.value.message()) == ("422", NOT_PAIRS)
        text = triton.InferInput("input_ids", [1], "BYTES")
        text.set_data_from_numpy(np.array([PAIR[0].encode()], dtype=object))
        types = triton.InferInput("token_type_ids", [1, 6], "INT64")
        types.set_data_from_numpy(np.ones((1, 6), dtype=np.int64))
        with pytest.raises(InferenceServerException) as info:
            client.infer(MODEL, [text, types])
        expected = FILLED.format(name="token_type_ids")
        assert (info.value.status(), info.value.message()) == ("422", expected)
        assert client.infer(MODEL, [text]).as_numpy("logits").shape == (1, 3)
    finally:
        client.close()


def test_batch_jsonl_rows_with_a_text_pair_are_reported(store: LocalStore, tmp_path: Path) -> None:
    lines = [
        {"id": 1, "text": PAIR[0]},
        {"id": 2, "text": PAIR[0], "text_pair": PAIR[1]},  # reported; the rest still scores
        {"id": 3, "text": PAIR[1]},
    ]
    key = f"batch/{MODEL}/input/pairs.jsonl"
    store.put_bytes(key, "".join(json.dumps(line) + "\n" for line in lines).encode())
    summary = run(store, tmp_path, key)
    assert (summary["scored_rows"], summary["failed_rows"]) == (2, 1), summary
    assert [row["id"] for row in read_jsonl(store, summary["output"])] == [1, 3]
    errors = store.get_bytes(summary["errors"]).decode()
    assert "has a 'text_pair': this model reads one text a row (field 'text'), not pairs" in errors


def test_batch_csv_with_a_text_pair_column_is_refused(store: LocalStore, tmp_path: Path) -> None:
    key = f"batch/{MODEL}/input/pairs.csv"
    store.put_bytes(key, f"text,text_pair\n{PAIR[0]},{PAIR[1]}\n".encode())
    summary = run(store, tmp_path, key)
    assert summary.get("scored_rows", 0) == 0, summary
    assert "column 'text_pair'" in json.dumps(summary), summary


def test_explain_refuses_pairs_and_filled_inputs_too(http: httpx.Client) -> None:
    url = f"/models/{MODEL}/explain"
    assert error_of(http.post(url, json={"inputs": [PAIR]})) == (422, NOT_PAIRS)
    body = {"inputs": {"input_ids": [PAIR[0]], "token_type_ids": [[1] * 6]}}
    assert error_of(http.post(url, json=body)) == (422, FILLED.format(name="token_type_ids"))


def test_a_text_field_named_text_pair_is_read_as_the_text(store: LocalStore) -> None:
    # `--text-field text_pair`: that field is the one text of a row, not a pair's second.
    manifest = Registry(store).manifest(MODEL, "1")
    pre = {**manifest.preprocessing, "text_field": "text_pair"}
    renamed = dataclasses.replace(manifest, preprocessing=pre)
    decoded = simple.decode({"instances": [{"text_pair": PAIR[0]}]}, renamed)
    assert decoded["text_pair"].tolist() == [PAIR[0]]
