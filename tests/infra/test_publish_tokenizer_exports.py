"""`aiaas publish --tokenizer` with transformers exported otherwise than the demo's.

What users bring besides a Hugging Face export: Google BERT's input names (`input_mask`,
`segment_ids`, as tf2onnx and the ONNX model zoo's BERT-SQuAD have them), a model reading ids
only, a model of two texts, a tokenizer.json that truncates on its own. The reference is the
user's side with no aiaas code: the `tokenizers` library's encode of the file as saved and a
bare onnxruntime session of the original model; serving is the runtime's own load of the
published version, and token ids out of the vocabulary go through real HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import hf_transformer
from tests.infra.test_publish_tokenizer import POSITIONS, TEXTS, VOCAB, publish, refused
from tests.infra.test_serve import ServeProcess, start_serve

LABELS = ",".join(hf_transformer.LABELS)
GOOGLE = {"attention_mask": "input_mask", "token_type_ids": "segment_ids"}


def own_feeds(
    tokenizer: Path, texts: list[str], names: dict[str, str], cut: int | None = None
) -> dict[str, np.ndarray]:
    """The tokenizer file as its user saved it (its own truncation, else `cut` or the model's
    positions), padded right."""
    own = Tokenizer.from_file(str(tokenizer))
    if cut or own.truncation is None:
        own.enable_truncation(cut or POSITIONS)
    own.enable_padding(pad_id=0)
    encodings = own.encode_batch(texts)
    tables = {
        "input_ids": [e.ids for e in encodings],
        "attention_mask": [e.attention_mask for e in encodings],
        "token_type_ids": [e.type_ids for e in encodings],
    }
    return {names.get(k, k): np.array(v, dtype=np.int64) for k, v in tables.items()}


def served_logits(store: LocalStore, root: Path, name: str) -> np.ndarray:
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    loaded = pool.load_version(name, "1")
    return loaded.predict({"input_ids": np.array(TEXTS)})["logits"]


def reference(model: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    return np.asarray(session.run(None, {k: v for k, v in feeds.items() if k in wanted})[0])


def test_google_bert_input_names_are_filled(tmp_path: Path) -> None:
    model = hf_transformer.transformer(tmp_path / "bert.onnx", positions=POSITIONS, names=GOOGLE)
    tokenizer = hf_transformer.tokenizer_json(tmp_path / "tokenizer.json")
    store = LocalStore(tmp_path / "store")
    code, _, err = publish(store, model, "--labels", LABELS, "--tokenizer", str(tokenizer))
    assert code == 0, err
    pre = Registry(store).manifest("tiny-bert", "1").preprocessing
    assert (pre["text_input"], pre["mask_input"], pre["type_ids_input"]) == (
        "input_ids",
        "input_mask",
        "segment_ids",
    )
    expected = reference(model, own_feeds(tokenizer, TEXTS, GOOGLE))
    np.testing.assert_allclose(served_logits(store, tmp_path, "tiny-bert"), expected, atol=1e-4)


def test_a_model_of_two_texts_is_refused_naming_its_inputs(tmp_path: Path) -> None:
    two = {"input_ids": "query_ids", "token_type_ids": "doc_ids"}
    model = hf_transformer.transformer(tmp_path / "two.onnx", positions=POSITIONS, names=two)
    tokenizer = hf_transformer.tokenizer_json(tmp_path / "tokenizer.json")
    error = refused(tmp_path, model, "--tokenizer", str(tokenizer))
    assert error.startswith(
        "the model reads 2 inputs of token ids ['query_ids', 'doc_ids']; raw text fills one "
        "('input_ids' / 'ids' / 'tokens'), with its attention mask "
    ), error
    assert error.endswith("(a model of two texts takes token ids: publish it without --tokenizer)")


def test_a_model_whose_answer_changes_with_padding_is_refused(tmp_path: Path) -> None:
    """No attention mask: a text's answer would depend on the other texts of its request."""
    model = hf_transformer.transformer(tmp_path / "ids.onnx", positions=POSITIONS, mask="none")
    tokenizer = hf_transformer.tokenizer_json(tmp_path / "tokenizer.json")
    error = refused(tmp_path, model, "--tokenizer", str(tokenizer))
    assert error.startswith(
        "the model's answer for a text changes when a longer text in the same request pads it "
        "('logits' moves by "
    ), error
    assert error.endswith(
        "so callers would get answers that depend on their batch: it reads no attention mask "
        "('attention_mask' / 'input_mask' / 'mask'): export it with one, as Hugging Face "
        "exports do"
    )


def test_a_model_masking_padding_from_its_ids_is_served(tmp_path: Path) -> None:
    model = hf_transformer.transformer(tmp_path / "ids.onnx", positions=POSITIONS, mask="from_ids")
    tokenizer = hf_transformer.tokenizer_json(tmp_path / "tokenizer.json")
    store = LocalStore(tmp_path / "store")
    code, _, err = publish(store, model, "--labels", LABELS, "--tokenizer", str(tokenizer))
    assert code == 0, err
    expected = reference(model, own_feeds(tokenizer, TEXTS, {}))
    np.testing.assert_allclose(served_logits(store, tmp_path, "tiny-bert"), expected, atol=1e-4)


@pytest.mark.parametrize(("truncation", "read"), [(12, 12), (64, POSITIONS)])
def test_the_tokenizer_files_own_truncation_is_kept(
    tmp_path: Path, truncation: int, read: int
) -> None:
    """A tokenizer.json saved with truncation is what its user trained with: serving cuts
    there too (up to the positions the model reads), not at the position table."""
    model = hf_transformer.transformer(tmp_path / "bert.onnx", positions=POSITIONS)
    tokenizer = hf_transformer.tokenizer_json(tmp_path / "tokenizer.json")
    saved = Tokenizer.from_file(str(tokenizer))
    saved.enable_truncation(truncation)
    saved.save(str(tokenizer))
    store = LocalStore(tmp_path / "store")
    code, out, err = publish(store, model, "--labels", LABELS, "--tokenizer", str(tokenizer))
    assert code == 0, err
    assert f"texts longer than {read} tokens are cut to the first {read}" in out
    assert Registry(store).manifest("tiny-bert", "1").preprocessing["max_length"] == read
    # Past the positions the model reads, its user's own file could not have fed it either.
    feeds = own_feeds(tokenizer, TEXTS, {}, cut=min(truncation, POSITIONS))
    np.testing.assert_allclose(
        served_logits(store, tmp_path, "tiny-bert"), reference(model, feeds), atol=1e-4
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("ids")
    model = hf_transformer.transformer(root / "bert.onnx", positions=POSITIONS)
    tokenizer = hf_transformer.tokenizer_json(root / "tokenizer.json")
    store = LocalStore(root / "store")
    code, _, err = publish(store, model, "--labels", LABELS, "--tokenizer", str(tokenizer))
    assert code == 0, err
    yield from start_serve(store.root)


@pytest.fixture
def http(server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        yield client


@pytest.mark.parametrize("bad", [-5, VOCAB], ids=["negative", "past-the-vocabulary"])
def test_token_ids_outside_the_vocabulary_are_a_clear_422(http: httpx.Client, bad: int) -> None:
    """A negative id was read from the embedding's end (a wrong answer, 200); one past it
    failed inside onnxruntime. Both are the caller's to fix."""
    row = [2, 7, bad, 3]
    body = {"input_ids": [row], "attention_mask": [[1] * 4], "token_type_ids": [[0] * 4]}
    answer = http.post("/models/tiny-bert/predict", json={"inputs": body})
    assert (answer.status_code, answer.json()) == (
        422,
        {
            "error": f"input 'input_ids' holds token id {bad}; this model's vocabulary has ids "
            f"0 to {VOCAB - 1}"
        },
    )
    tensors = [
        {"name": k, "datatype": "INT64", "shape": [1, 4], "data": v[0]} for k, v in body.items()
    ]
    answer = http.post("/v2/models/tiny-bert/infer", json={"inputs": tensors})
    assert answer.status_code == 422 and f"holds token id {bad};" in answer.json()["error"]
    assert http.post("/models/tiny-bert/predict", json={"inputs": ["fine"]}).status_code == 200


@pytest.mark.parametrize(
    ("mask", "error"),
    [
        (  # a masked mean divided by zero: a 500 "answered non-finite values"
            [[1, 1, 1, 1], [0, 0, 0, 0]],
            "input 'attention_mask' row 1 is all 0: it hides every token, so the model has "
            "nothing to read; send 1 for each token",
        ),
        (  # taken, and it moved the answer
            [[1, 1, 7, 1], [1, 1, 1, 1]],
            "input 'attention_mask' holds 7; an attention mask is 1 for a token the model reads "
            "and 0 for padding",
        ),
    ],
    ids=["all-zero", "seven"],
)
def test_an_attention_mask_of_other_values_or_all_zero_is_a_422(
    http: httpx.Client, mask: list[list[int]], error: str
) -> None:
    body = {
        "input_ids": [[2, 7, 8, 3]] * 2,
        "attention_mask": mask,
        "token_type_ids": [[0] * 4] * 2,
    }
    answer = http.post("/models/tiny-bert/predict", json={"inputs": body})
    assert (answer.status_code, answer.json()) == (422, {"error": error})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("attention_mask", [[1], [1]]),  # broadcast over every token in the graph: a wrong 200
        ("attention_mask", [[1, 1], [1, 1]]),  # onnxruntime's "Attempting to broadcast ..."
        ("token_type_ids", [[0], [0]]),
        ("token_type_ids", [[0] * 5] * 2),
    ],
    ids=["mask-width-1", "mask-width-2", "types-width-1", "types-width-5"],
)
def test_a_mask_or_type_ids_not_of_the_ids_shape_is_a_422(
    http: httpx.Client, name: str, value: list[list[int]]
) -> None:
    body = {"input_ids": [[2, 7, 8, 3]] * 2, "attention_mask": [[1] * 4] * 2}
    body["token_type_ids"] = [[0] * 4] * 2
    body[name] = value
    answer = http.post("/models/tiny-bert/predict", json={"inputs": body})
    error = (
        f"input '{name}' has shape {[2, len(value[0])]}; input 'input_ids' has [2, 4]: send "
        "one value per token, the same shape"
    )
    assert (answer.status_code, answer.json()) == (422, {"error": error})


def test_one_column_rows_are_texts_and_an_empty_list_an_empty_batch(http: httpx.Client) -> None:
    """[[text], ...] is how a one-column table's rows come (pandas `values.tolist()`): they
    were refused as 'this model has several inputs', and so was an empty list."""
    url = "/models/tiny-bert/predict"
    rows = http.post(url, json={"inputs": [[t] for t in TEXTS[:3]]})
    flat = http.post(url, json={"inputs": TEXTS[:3]})
    assert rows.status_code == 200, rows.text
    assert rows.json()["predictions"] == flat.json()["predictions"]
    empty = http.post(url, json={"inputs": []})
    assert (empty.status_code, empty.json()) == (
        422,
        {"error": "input 'input_ids' has an empty batch; send at least one text"},
    )
    numbers = http.post(url, json={"inputs": [5, 6]})  # not texts: say what to send
    assert (numbers.status_code, numbers.json()["error"]) == (
        400,
        "this model has several inputs ['input_ids', 'attention_mask', 'token_type_ids']: "
        'send {"inputs": ["a text", ...]}, or {"inputs": {name: value}}',
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (  # was "row 0 must be text; got list": row 0 is a fine [N, 1] row, row 1 is not
            {"inputs": [["where is my parcel"], ["a", "b"]]},
            "input 'input_ids' row 1 holds 2 values; send one text per row: this model reads "
            "one text a row, not pairs of texts",
        ),
        (  # was "...not pairs of texts" for a text beside a number
            {"inputs": [["where is my parcel", 5]]},
            "input 'input_ids' takes one text per row, shape [N] or [N, 1]; got [1, 2]",
        ),
        (  # was a 200 with the mask dropped unsaid, where {"inputs": ...} refuses it
            {"instances": [{"text": "where is my parcel", "attention_mask": [1]}]},
            "instances[0] has 'attention_mask', which the model's tokenizer fills from the "
            "text; send the text alone, or token ids with it",
        ),
    ],
    ids=["ragged-rows", "text-and-number", "record-with-mask"],
)
def test_text_rows_that_are_not_one_text_are_named(
    http: httpx.Client, body: dict[str, object], error: str
) -> None:
    answer = http.post("/models/tiny-bert/predict", json=body)
    assert (answer.status_code, answer.json()) == (422, {"error": error})
