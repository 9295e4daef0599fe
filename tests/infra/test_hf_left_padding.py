"""A decoder classifier whose tokenizer.json pads on the LEFT (tests/hf_gpt2.py): GPT-2 style,
byte-level BPE, the last position pooled, positions counted from the mask, `pad_to_multiple_of`
8 and truncation to 20 tokens saved in the file, as its user trained it.

The reference is the user's side with no aiaas code: `Tokenizer.from_file(...).encode_batch`
(the file's own padding and truncation) and a bare onnxruntime session of the original file.
Serving pads as that file says: simple JSON and OIP BYTES through `aiaas serve` over real HTTP,
batch JSONL and CSV text columns, explanations, and the user's own padded ids sent as such.
Padded on the right (as serving did), a short text's last position is a pad token: `aiaas
publish` refused the model as one that ignores its mask.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from functions.runtime.hf_tokenizer import HfInputs, HfTokenizer
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import hf_gpt2, hf_transformer
from tests.batch_support import read_jsonl, run
from tests.infra.test_publish_tokenizer import publish
from tests.infra.test_serve import ServeProcess, start_serve

pytestmark = pytest.mark.xdist_group("hf_left_padding")

MODEL = "tiny-gpt2"
TEXTS = [
    "where is my parcel",
    "i was charged twice on my card, please refund my money and cancel the order now",
    "the app crashes",
    "cancel",
    "reset my password please",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, Path, Path]:
    root = tmp_path_factory.mktemp("gpt2")
    tokenizer = hf_gpt2.tokenizer_json(root / "tokenizer.json", truncation={"max_length": 20})
    vocab = Tokenizer.from_file(str(tokenizer)).get_vocab_size(with_added_tokens=True)
    model = hf_gpt2.transformer(root / "model.onnx", vocab)
    store = LocalStore(root / "store")
    labels = ",".join(hf_gpt2.LABELS)
    code, out, err = publish(store, model, "--labels", labels, "--tokenizer", str(tokenizer),
                             name=MODEL)  # fmt: skip
    assert code == 0, err
    assert "batches are padded on the left, as tokenizer.json says" in out
    return store, model, tokenizer


def own_feeds(tokenizer: Path, texts: list[str]) -> dict[str, np.ndarray]:
    encodings = Tokenizer.from_file(str(tokenizer)).encode_batch(texts)
    return {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
    }


@pytest.fixture(scope="module")
def reference(built: tuple[LocalStore, Path, Path]) -> np.ndarray:
    _, model, tokenizer = built
    feeds = own_feeds(tokenizer, TEXTS)
    assert feeds["input_ids"].shape[1] == 24  # 20 tokens, padded to a multiple of 8
    assert feeds["attention_mask"][0, 0] == 0  # on the left
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    logits = np.asarray(session.run(None, feeds)[0])
    assert len(set(logits.argmax(axis=1))) > 1, "the test model should tell the texts apart"
    return logits


@pytest.fixture(scope="module")
def server(built: tuple[LocalStore, Path, Path]) -> Iterator[ServeProcess]:
    yield from start_serve(built[0].root)


@pytest.fixture
def http(server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        yield client


def test_manifest_records_the_padding(built: tuple[LocalStore, Path, Path]) -> None:
    pre = Registry(built[0]).manifest(MODEL, "1").preprocessing
    assert pre["padding"] == ("left side with id 0, to the longest, a multiple of 8")
    assert (pre["max_length"], pre["max_width"]) == (20, 24)


def test_simple_json_and_oip_answer_as_the_users_own_pipeline(
    http: httpx.Client, reference: np.ndarray
) -> None:
    answer = http.post(f"/models/{MODEL}/predict", json={"inputs": TEXTS})
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["outputs"]["logits"], reference, atol=1e-4)
    labels = [hf_gpt2.LABELS[i] for i in reference.argmax(axis=1)]
    assert [p["label"] for p in answer.json()["predictions"]] == labels
    tensor = {"name": "input_ids", "datatype": "BYTES", "shape": [len(TEXTS)], "data": TEXTS}
    answer = http.post(f"/v2/models/{MODEL}/infer", json={"inputs": [tensor]})
    assert answer.status_code == 200, answer.text
    out = answer.json()["outputs"][0]
    np.testing.assert_allclose(np.reshape(out["data"], reference.shape), reference, atol=1e-4)


def test_the_users_own_padded_ids_are_accepted(
    http: httpx.Client, built: tuple[LocalStore, Path, Path], reference: np.ndarray
) -> None:
    """24 ids a row (20 tokens padded to a multiple of 8), wider than max_length: not a 422."""
    feeds = own_feeds(built[2], TEXTS)
    body = {"inputs": {k: v.tolist() for k, v in feeds.items()}}
    answer = http.post(f"/models/{MODEL}/predict", json=body)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["outputs"]["logits"], reference, atol=1e-4)
    wider = {k: np.pad(v, ((0, 0), (8, 0))).tolist() for k, v in feeds.items()}
    answer = http.post(f"/models/{MODEL}/predict", json={"inputs": wider})
    assert answer.status_code == 422
    assert "has 32 tokens a row; this model reads at most 24" in answer.json()["error"]


def test_explanations_predict_what_serving_answers(
    http: httpx.Client, reference: np.ndarray
) -> None:
    answer = http.post(f"/models/{MODEL}/explain", json={"inputs": TEXTS[:4]})
    assert answer.status_code == 200, answer.text
    explained = answer.json()["explanations"]
    assert explained[3]["tokens"] == ["c", "an", "cel"]
    shifted = np.exp(reference[:4] - reference[:4].max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    got = [e["prediction"] for e in explained]
    np.testing.assert_allclose(got, probabilities, atol=1e-4)


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_batch_text_columns(
    built: tuple[LocalStore, Path, Path], reference: np.ndarray, tmp_path: Path, suffix: str
) -> None:
    store = built[0]
    if suffix == "jsonl":
        body = "".join(json.dumps({"text": t}) + "\n" for t in TEXTS)
    else:
        body = "text\n" + "".join(json.dumps(t) + "\n" for t in TEXTS)
    key = f"batch/{MODEL}/input/texts.{suffix}"
    store.put_bytes(key, body.encode())
    summary = run(store, tmp_path, key, chunk_rows=2)  # chunks of mixed lengths
    assert summary["scored_rows"] == len(TEXTS), summary
    labels = [hf_gpt2.LABELS[i] for i in reference.argmax(axis=1)]
    if suffix == "jsonl":
        rows = read_jsonl(store, summary["output"])
        logits = [r["pred_logits"] for r in rows]
        assert [r["pred_label"] for r in rows] == labels
    else:  # text, pred_logits_0..2, pred_label, pred_score
        parsed = list(csv.reader(io.StringIO(store.get_bytes(summary["output"]).decode())))[1:]
        logits = [[float(v) for v in row[1:4]] for row in parsed]
        assert [row[4] for row in parsed] == labels
    np.testing.assert_allclose(logits, reference, atol=1e-4)


def test_a_multiple_that_pads_past_the_positions_is_refused_saying_so(tmp_path: Path) -> None:
    """BERT's tokenizer.json padding to a multiple of 8 over a model of 20 positions: a
    20-token text is padded to 24 ids, as the user's own encode_batch pads it."""
    model = hf_transformer.transformer(tmp_path / "m.onnx", positions=20)
    own = Tokenizer.from_file(str(hf_transformer.tokenizer_json(tmp_path / "t.json")))
    own.enable_padding(pad_id=0, pad_token="[PAD]", pad_to_multiple_of=8)
    own.save(str(tmp_path / "t.json"))
    store = LocalStore(tmp_path / "store")
    argv = ("--labels", "a,b,c", "--tokenizer", str(tmp_path / "t.json"))
    code, _, err = publish(store, model, *argv)
    assert code == 1
    assert "fails on a text of 20 tokens padded to 24 ids, as tokenizer.json's padding (right " \
        "side with id 0, to the longest, a multiple of 8) pads it" in err, err  # fmt: skip
    assert "within the positions the model reads (--max-length 16: padded to 16 ids)" in err
    code, _, err = publish(store, model, *argv, "--max-length", "16")
    assert code == 0, err


@pytest.mark.parametrize(
    ("padding", "width", "shape"),
    [
        ({"length": 24}, None, 24),  # a fixed length: every row as wide, as the user's own
        ({"length": 8}, None, 20),  # under max_length: rows as wide as the longest may be
        ({"pad_to_multiple_of": 8, "direction": "left"}, 30, 30),  # the input's fixed width
    ],
)
def test_served_ids_are_the_files_own_padding(
    tmp_path: Path, padding: dict[str, Any], width: int | None, shape: int
) -> None:
    own = Tokenizer.from_file(str(hf_transformer.tokenizer_json(tmp_path / "t.json")))
    own.enable_padding(pad_id=0, pad_token="[PAD]", pad_type_id=1, **padding)
    inputs = HfInputs("input_ids", "attention_mask", "token_type_ids")
    served = HfTokenizer(own.to_str(), 20, inputs, width).feeds(TEXTS[:3], "input_ids")
    if width:
        own.enable_padding(pad_id=0, pad_token="[PAD]", pad_type_id=1, length=width,
                           direction="left")  # fmt: skip
    if padding.get("length") == 8:  # the user's own: rows of 8, 12 and 20 ids, not a table
        own.enable_padding(pad_id=0, pad_token="[PAD]", pad_type_id=1, length=20)
    own.enable_truncation(20)
    expected = own.encode_batch(TEXTS[:3])
    assert served["input_ids"].shape == (3, shape)
    np.testing.assert_array_equal(served["input_ids"], [e.ids for e in expected])
    np.testing.assert_array_equal(served["attention_mask"], [e.attention_mask for e in expected])
    np.testing.assert_array_equal(served["token_type_ids"], [e.type_ids for e in expected])


def test_a_left_padded_model_whose_file_says_no_padding_is_refused_saying_so(
    tmp_path: Path,
) -> None:
    """GPT-2's own tokenizer.json has no padding (transformers keeps padding_side in
    tokenizer_config.json): padded on the right the model's answer moves, on the left it does
    not, and the refusal says how to save the file."""
    tokenizer = hf_gpt2.tokenizer_json(
        tmp_path / "t.json", direction=None, truncation={"max_length": 20}
    )
    vocab = Tokenizer.from_file(str(tokenizer)).get_vocab_size(with_added_tokens=True)
    model = hf_gpt2.transformer(tmp_path / "m.onnx", vocab)
    code, _, err = publish(LocalStore(tmp_path / "store"), model, "--tokenizer", str(tokenizer))
    assert code == 1
    assert "pads it on the right ('logits' moves by" in err, err
    assert "but not on the left: it was trained with left padding" in err
    assert "tokenizer.enable_padding(direction='left', pad_id=0, pad_token=...)" in err


def test_a_right_padded_model_whose_file_pads_left_is_refused_saying_so(tmp_path: Path) -> None:
    """The mirror: a BERT-style model of absolute positions, its tokenizer.json saved with left
    padding. It was told it 'does not mask the padding with its attention_mask', which it
    does: left padding moved its tokens' positions."""
    tokenizer = hf_transformer.tokenizer_json(tmp_path / "t.json")
    own = Tokenizer.from_file(str(tokenizer))
    own.enable_padding(direction="left", pad_id=0, pad_token="[PAD]")
    own.save(str(tokenizer))
    model = hf_transformer.transformer(tmp_path / "m.onnx", positions=24)
    argv = ("--labels", ",".join(hf_transformer.LABELS), "--tokenizer", str(tokenizer))
    code, _, err = publish(LocalStore(tmp_path / "store"), model, *argv)
    assert code == 1
    assert "pads it on the left, as this tokenizer.json pads ('logits' moves by" in err, err
    assert "but not on the right: its tokens' positions count from the row's start" in err
    assert "tokenizer.enable_padding(direction='right', pad_id=0, pad_token=...)" in err
