"""Token attributions for users' own transformers published with a tokenizer.json, over real HTTP
(`aiaas serve`) and the `aiaas explain` command, checked against a reference with no aiaas code:
the `tokenizers` library's own encode, the Shapley formula over every subset of the text's
tokens, and a bare onnxruntime session of the original file, a token absent as it is in a padded
batch (attention mask 0, the pad id). Three models: the BERT-style WordPiece one of
tests/hf_transformer.py reading an attention mask, the same finding padding from its ids (no
mask input) and with its length fixed at 24, and a RoBERTa-style byte-level BPE model exported by torch (tests/hf_roberta.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import hf_roberta, hf_transformer
from tests.infra.test_publish_tokenizer import POSITIONS, publish
from tests.infra.test_serve import ServeProcess, start_serve

LABELS = ",".join(hf_transformer.LABELS)
SHORT = "Where is my parcels, please?"  # 8 tokens between [CLS] and [SEP], "##s" one of them
TWELVE = "the app crashes when i open settings and my login never works"  # 12: sampled
LONG = (  # 30 words: the first 22 tokens are read, [CLS] and [SEP] around them
    "my order never arrived and the tracking says in transit for two weeks now and nobody "
    "helps with a refund of my money or a cancel of my subscription please"
)


@dataclass(frozen=True)
class Model:
    name: str
    path: Path
    tokenizer: Path
    mask: bool  # the model reads attention_mask
    width: int | None = None  # the ids input's fixed width (rows padded to it)

    def encode(self, text: str) -> Any:
        own = Tokenizer.from_file(str(self.tokenizer))
        own.enable_truncation(POSITIONS)
        return own.encode(text)

    def pad_id(self) -> int:
        own = Tokenizer.from_file(str(self.tokenizer))
        found = own.token_to_id("[PAD]")
        return int(own.token_to_id("<pad>") if found is None else found)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, dict[str, Model]]:
    root = tmp_path_factory.mktemp("hf-explain")
    store = LocalStore(root / "store")
    bert = hf_transformer.tokenizer_json(root / "bert.json")
    roberta = hf_roberta.tokenizer_json(root / "roberta.json")
    own = Tokenizer.from_file(str(roberta))
    vocab, pad = own.get_vocab_size(), own.token_to_id("<pad>")
    built = [
        Model("tiny-bert", hf_transformer.transformer(root / "b.onnx", positions=POSITIONS), bert, True),
        Model(
            "tiny-bert-ids",
            hf_transformer.transformer(root / "i.onnx", positions=POSITIONS, mask="from_ids"),
            bert,
            False,
        ),
        Model("tiny-bert-fixed", fixed_width(root / "b.onnx", root / "f.onnx"), bert, True, POSITIONS),
        Model("tiny-roberta", hf_roberta.transformer(root / "r.onnx", vocab, pad, POSITIONS), roberta, True),
    ]  # fmt: skip
    for model in built:
        argv = ("--labels", LABELS, "--tokenizer", str(model.tokenizer), "--max-length", "24")
        code, _, err = publish(store, model.path, *argv, name=model.name)
        assert code == 0, err
    return store, {m.name: m for m in built}


def fixed_width(source: Path, path: Path) -> Path:
    """The same model with every input [N, 24], as tf2onnx and zoo BERTs fix the length."""
    model = onnx.load(str(source))
    for spec in model.graph.input:
        spec.type.tensor_type.shape.dim[1].dim_value = POSITIONS
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def server(models: tuple[LocalStore, dict[str, Model]]) -> Iterator[ServeProcess]:
    yield from start_serve(models[0].root)


@pytest.fixture
def http(server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=60) as client:
        yield client


def reference(model: Model, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """(exact Shapley values [T, C], base [C], prediction [C], the encoding) of the game
    v(S) = the original file's probabilities with the tokens outside S absent."""
    encoding = model.encode(text)
    pad = (model.width or len(encoding.ids)) - len(encoding.ids)
    encoding.pad(len(encoding.ids) + pad, pad_id=model.pad_id())
    ids = np.array(encoding.ids)
    players = np.flatnonzero(np.array(encoding.special_tokens_mask) == 0)
    kept = np.array(encoding.attention_mask)
    m = len(players)
    subsets = np.arange(2**m)
    present = ((subsets[:, None] >> np.arange(m)) & 1).astype(bool)
    absent = np.zeros((len(subsets), len(ids)), dtype=bool)
    absent[:, players] = ~present
    # Absent: hidden by the attention mask (the ids, and positions numbered from them, stay);
    # a model that reads no mask is given the pad id there.
    feeds = {"input_ids": np.where(absent & (not model.mask), model.pad_id(), ids[None])}
    if model.mask:
        feeds["attention_mask"] = np.where(absent, 0, kept[None])
    if "bert" in model.name and "roberta" not in model.name:
        feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
    session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    feeds = {k: v.astype(np.int64) for k, v in feeds.items()}
    logits = session.run(None, feeds)[0].astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    v = e / e.sum(axis=1, keepdims=True)
    sizes = present.sum(axis=1)
    weight = np.array([math.factorial(s) * math.factorial(m - s - 1) for s in range(m)])
    phi = np.zeros((m, v.shape[1]))
    for i in range(m):
        without = subsets[(subsets >> i) & 1 == 0]
        phi[i] = (weight[sizes[without], None] * (v[without | 1 << i] - v[without])).sum(axis=0)
    return phi / math.factorial(m), v[0], v[-1], encoding


def explain(http: httpx.Client, name: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = http.post(f"/models/{name}/explain", json=body)
    assert answer.status_code == 200, answer.text
    doc: dict[str, Any] = answer.json()
    return doc


@pytest.mark.parametrize("name", ["tiny-bert", "tiny-bert-ids", "tiny-bert-fixed", "tiny-roberta"])
def test_a_short_text_gets_the_exact_shapley_values_of_its_tokens(
    http: httpx.Client, models: tuple[LocalStore, dict[str, Model]], name: str
) -> None:
    model = models[1][name]
    doc = explain(http, name, {"inputs": [SHORT]})
    row = doc["explanations"][0]
    want, base, prediction, encoding = reference(model, SHORT)
    players = [i for i, s in enumerate(encoding.special_tokens_mask) if not s]
    # The tokenizer's own split and offsets, specials left out (they are never masked).
    assert row["tokens"] == [encoding.tokens[i] for i in players]
    assert row["offsets"] == [list(encoding.offsets[i]) for i in players]
    assert (
        doc["parameters"]["exact"] is True and doc["parameters"]["special_tokens"] == "never masked"
    )
    assert doc["parameters"]["samples"] == 2 ** len(players) - 2
    np.testing.assert_allclose(row["attributions"], want, atol=1e-6)
    np.testing.assert_allclose(row["base_value"], base, atol=1e-6)
    np.testing.assert_allclose(row["prediction"], prediction, atol=1e-6)
    gap = np.asarray(row["prediction"]) - np.asarray(row["base_value"])
    np.testing.assert_allclose(np.sum(row["attributions"], axis=0), gap, atol=1e-5)
    predicted = http.post(f"/models/{name}/predict", json={"inputs": [SHORT]}).json()
    assert row["label"] == predicted["predictions"][0]["label"]


def test_tokens_and_offsets_point_into_the_text(http: httpx.Client) -> None:
    row = explain(http, "tiny-bert", {"instances": [{"text": SHORT}]})["explanations"][0]
    assert row["tokens"] == ["where", "is", "my", "parcel", "##s", "[UNK]", "please", "[UNK]"]
    pieces = [SHORT[start:end] for start, end in row["offsets"]]
    assert pieces == ["Where", "is", "my", "parcel", "s", ",", "please", "?"]
    row = explain(http, "tiny-roberta", {"inputs": ["my parcel, please"]})["explanations"][0]
    assert row["tokens"][:2] == ["my", "Ġparcel"]
    assert ["my parcel, please"[a:b] for a, b in row["offsets"]][:2] == ["my", "parcel"]


def test_a_longer_text_is_sampled_near_the_exact_values(
    http: httpx.Client, models: tuple[LocalStore, dict[str, Model]]
) -> None:
    doc = explain(http, "tiny-bert", {"inputs": [TWELVE]})
    row = doc["explanations"][0]
    want, _, _, _ = reference(models[1]["tiny-bert"], TWELVE)
    got = np.asarray(row["attributions"])
    assert len(row["tokens"]) == 12 and doc["parameters"]["exact"] is False
    assert doc["parameters"]["samples"] == 2 * 12 + 2048  # of 4,094 coalitions
    # Stated tolerance: every class's attributions correlate with the exact ones (r > 0.99)
    # and differ by under 10% of the largest.
    for c in range(got.shape[1]):
        assert np.corrcoef(got[:, c], want[:, c])[0, 1] > 0.99
    assert np.abs(got - want).max() < 0.1 * np.abs(want).max()
    gap = np.asarray(row["prediction"]) - np.asarray(row["base_value"])
    np.testing.assert_allclose(got.sum(axis=0), gap, atol=1e-5)


def test_a_long_text_is_cut_where_serving_cuts_it(
    http: httpx.Client, models: tuple[LocalStore, dict[str, Model]]
) -> None:
    encoding = models[1]["tiny-bert"].encode(LONG)
    row = explain(http, "tiny-bert", {"inputs": [LONG]})["explanations"][0]
    assert row["tokens"] == encoding.tokens[1:-1] and len(row["tokens"]) == POSITIONS - 2
    predicted = http.post("/models/tiny-bert/predict", json={"inputs": [LONG]}).json()
    logits = np.asarray(predicted["outputs"]["logits"][0], dtype=np.float64)
    np.testing.assert_allclose(row["prediction"], np.exp(logits) / np.exp(logits).sum(), atol=1e-6)
    gap = np.asarray(row["prediction"]) - np.asarray(row["base_value"])
    np.testing.assert_allclose(np.sum(row["attributions"], axis=0), gap, atol=1e-5)


def test_v2_explain_and_token_ids_give_the_same_attributions(
    http: httpx.Client, models: tuple[LocalStore, dict[str, Model]]
) -> None:
    texts = [SHORT, "refund"]
    simple = explain(http, "tiny-bert", {"inputs": texts})["explanations"]
    request = {"inputs": [{"name": "input_ids", "datatype": "BYTES", "shape": [2], "data": texts}]}
    answer = http.post("/v2/models/tiny-bert/explain", json=request)
    assert answer.status_code == 200, answer.text
    tensors = {t["name"]: t for t in answer.json()["outputs"]}
    assert tensors["attributions"]["shape"] == [2, 8, 3]
    assert tensors["tokens"]["data"][8:] == ["refund"] + [""] * 7
    assert tensors["offsets"]["shape"] == [2, 8, 2]
    assert tensors["offsets"]["data"][16:20] == [0, 6, -1, -1]
    attributions = np.reshape(tensors["attributions"]["data"], (2, 8, 3))
    np.testing.assert_allclose(attributions[0], simple[0]["attributions"], atol=1e-12)
    np.testing.assert_allclose(attributions[1, :1], simple[1]["attributions"], atol=1e-12)
    assert not attributions[1, 1:].any()
    # The same texts as token ids, a padded batch as a client that tokenizes sends it.
    own = Tokenizer.from_file(str(models[1]["tiny-bert"].tokenizer))
    own.enable_padding(pad_id=0)
    encodings = own.encode_batch(texts)
    ids = {
        "input_ids": [e.ids for e in encodings],
        "attention_mask": [e.attention_mask for e in encodings],
        "token_type_ids": [e.type_ids for e in encodings],
    }
    by_ids = explain(http, "tiny-bert", {"inputs": ids})["explanations"]
    for got, want in zip(by_ids, simple, strict=True):
        assert got["tokens"] == want["tokens"] and "offsets" not in got
        np.testing.assert_allclose(got["attributions"], want["attributions"], atol=1e-9)


def test_an_over_budget_request_is_a_422_with_the_numbers(http: httpx.Client) -> None:
    body = {"inputs": [LONG] * 64, "parameters": {"samples": 100_000}}
    answer = http.post("/models/tiny-bert/explain", json=body)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error.startswith("this explanation needs about 6,400,128 model evaluations (64 text(s)")
    assert "of up to 24 tokens, 100,000 coalitions for the longest" in error
    assert "AIAAS_EXPLAIN_MAX_SECONDS" in error


def test_bad_text_is_a_422(http: httpx.Client) -> None:
    answer = http.post("/models/tiny-bert/explain", json={"inputs": ["   "]})
    assert answer.status_code == 422
    assert answer.json() == {"error": "input 'input_ids' row 0 is empty; send some text"}


def test_aiaas_explain_a_text_and_a_file(
    models: tuple[LocalStore, dict[str, Model]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = models[0]
    code = main(["--store", store.uri, "explain", "tiny-bert", "--inputs", json.dumps([SHORT])])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "parcel" in out and "##s" in out
    texts = tmp_path / "texts.txt"
    texts.write_text("where is my parcel\n\nrefund my money\n")
    why = tmp_path / "why.jsonl"
    argv = ["--store", store.uri, "explain", "tiny-bert", "--file", str(texts), "--out", str(why)]
    assert main(argv) == 0, capsys.readouterr()
    lines = [json.loads(line) for line in why.read_text().splitlines()]
    assert [line["tokens"] for line in lines] == [
        ["where", "is", "my", "parcel"],
        ["refund", "my", "money"],
    ]
    for line in lines:
        gap = np.asarray(line["prediction"]) - np.asarray(line["base_value"])
        np.testing.assert_allclose(np.sum(line["attributions"], axis=0), gap, atol=1e-5)


def test_aiaas_explain_a_jsonl_file_reads_its_text_field_as_batch_does(
    models: tuple[LocalStore, dict[str, Model]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The JSONL a user gave `aiaas batch` ({"id": .., "text": ..} a line): each line's JSON
    was explained as if it were the text ('{', '"', 'id', ...), labels and all, exit 0."""
    texts = tmp_path / "texts.ndjson"
    texts.write_bytes(
        b'{"id": 7, "text": "where is my parcel"}\n{"id": 8, "text": ""}\n'
        b'{"id": 9, "text": "\xff"}\n{"text": "refund my money"}\n'
    )
    why = tmp_path / "why.jsonl"
    store = models[0]
    argv = ["--store", store.uri, "explain", "tiny-bert", "--file", str(texts), "--out", str(why)]
    assert main(argv) == 1  # rows failed: said, the rest explained
    assert "explained 2 of 4 rows" in capsys.readouterr().out
    lines = [json.loads(line) for line in why.read_text().splitlines()]
    assert [(line["line"], line.get("record")) for line in lines] == [
        (1, {"id": 7}), (2, {"id": 8}), (3, None), (4, None)
    ]  # fmt: skip
    assert lines[0]["tokens"] == ["where", "is", "my", "parcel"]
    assert lines[3]["tokens"] == ["refund", "my", "money"]
    assert "empty" in lines[1]["error"] and "UTF-8" in lines[2]["error"]


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("texts.txt", b"where is my parcel\nrefund \xff money\n", ""),
        ("texts.csv", b"id,text\n7,where is my parcel\n8,refund \xff money\n", "column 'text' is "),
    ],
)
def test_aiaas_explain_a_row_not_utf8_is_reported_as_batch_reports_it(
    models: tuple[LocalStore, dict[str, Model]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes,
    where: str,
) -> None:
    """One such row refused the whole file (`line 3 is not UTF-8 text`), where `aiaas batch`
    scores the file and reports the row."""
    (tmp_path / name).write_bytes(content)
    argv = ["--store", models[0].uri, "explain", "tiny-bert", "--file", str(tmp_path / name)]
    assert main(argv) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["tokens"] == ["where", "is", "my", "parcel"]
    assert {k: v for k, v in lines[1].items() if k != "record"} == {
        "row": 1,
        "line": lines[0]["line"] + 1,
        "error": f"{where}not valid UTF-8 (byte 8)",
    }
    # A file in another encoding is named as such, as before, not a row of errors a line.
    (tmp_path / name).write_bytes(content.decode("latin-1").encode("utf-16"))
    assert main(argv) == 1
    assert f"{name} line 1 is not UTF-8 text (byte 0xff)" in capsys.readouterr().err


def test_ids_without_special_tokens_explain_against_padding_not_nothing(
    http: httpx.Client,
) -> None:
    """Token ids with no [CLS]/[SEP] (a tokenizer.json whose template adds none does the same):
    every token hidden by the mask left the model nothing to read, its masked mean divided by
    zero, and every attribution went out as null with a 200. Such a text's tokens are hidden
    by the padding id; the attributions add up to the prediction less the base."""
    ids = {"input_ids": [[10, 11, 12]], "attention_mask": [[1, 1, 1]], "token_type_ids": [[0] * 3]}
    doc = explain(http, "tiny-bert", {"inputs": ids})
    row = doc["explanations"][0]
    values = np.asarray(row["attributions"], dtype=float)
    assert np.isfinite(values).all() and np.isfinite(row["base_value"]).all()
    np.testing.assert_allclose(
        values.sum(axis=0), np.subtract(row["prediction"], row["base_value"]), atol=1e-6
    )
    assert "padding id in a text with no special token" in doc["parameters"]["masking"]
    with_specials = explain(http, "tiny-bert", {"inputs": [SHORT]})
    assert with_specials["parameters"]["masking"].startswith("attention mask 0 (the token")


def test_aiaas_explain_a_csv_numbers_a_record_over_lines_by_its_first_as_batch_does(
    models: tuple[LocalStore, dict[str, Model]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A text quoted over three lines was numbered by its last line (batch's error file says
    its first), and a refused row's reason said "row 0", its index in an internal request."""
    texts = tmp_path / "texts.csv"
    texts.write_text('id,text\n0,where is my parcel\n1,"  \n  "\n2,"refund\nmy\nmoney"\n3,\n')
    why = tmp_path / "why.jsonl"
    store = models[0]
    argv = ["--store", store.uri, "explain", "tiny-bert", "--file", str(texts), "--out", str(why)]
    assert main(argv) == 1
    capsys.readouterr()
    lines = [json.loads(line) for line in why.read_text().splitlines()]
    assert [line["line"] for line in lines] == [2, 3, 5, 8]
    assert lines[1]["error"] == "input 'input_ids' row 1 is empty; send some text"
    assert lines[2]["tokens"] == ["refund", "my", "money"]
