"""`aiaas publish --tokenizer tokenizer.json`: a user's own transformer answers raw text.

The reference is the user's side with no aiaas code: the `tokenizers` library's own encode of
the texts (truncated to the model's 24 positions, padded) and a bare onnxruntime session of the
original file on those ids. Serving goes through real HTTP (`aiaas serve` with httpx and
tritonclient, unchanged) and the batch runner on a JSONL file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton
from tokenizers import Tokenizer
from tritonclient.utils import InferenceServerException

from functions.runtime import hf_tokenizer
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import hf_transformer
from tests.batch_support import read_jsonl, run
from tests.infra.test_serve import ServeProcess, start_serve

MODEL = "tiny-bert"
POSITIONS = 24  # the model's position table: the longest text it reads, in tokens
VOCAB = len(hf_transformer.vocabulary())
TEXTS = [
    "Where is my parcel?",
    "I was charged twice on my card",
    "the app crashes when I open settings",
    "please reset my password",
    "Zyxq blorf",  # nothing the vocabulary knows: [CLS] [UNK] [UNK] [SEP]
    # Longer than 24 tokens: the first 22 words and [CLS], [SEP] are read.
    "my order never arrived and the tracking says in transit for two weeks now and "
    "nobody helps with a refund of my money or a cancel of my subscription",
]


@dataclass(frozen=True)
class Built:
    root: Path
    store: LocalStore
    model: Path
    tokenizer: Path
    published: str  # what `aiaas publish` printed


def publish(store: LocalStore, model: Path, *argv: str, name: str = MODEL) -> tuple[int, str, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--store", store.uri, "publish", str(model), "--name", name, *argv])
    return code, out.getvalue(), err.getvalue()


def published_text_model(root: Path) -> Built:
    """The test transformer and its tokenizer.json, published under `root`/store."""
    model = hf_transformer.transformer(root / "model.onnx", positions=POSITIONS)
    tokenizer = hf_transformer.tokenizer_json(root / "tokenizer.json")
    store = LocalStore(root / "store")
    labels = ",".join(hf_transformer.LABELS)
    code, out, err = publish(store, model, "--labels", labels, "--tokenizer", str(tokenizer))
    assert code == 0, err
    return Built(root, store, model, tokenizer, out)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return published_text_model(tmp_path_factory.mktemp("hf"))


def own_encode(tokenizer: Path, texts: list[str]) -> dict[str, np.ndarray]:
    """The tokenizers library's own encode, under the documented rule (truncate, pad right)."""
    own = Tokenizer.from_file(str(tokenizer))
    own.enable_truncation(POSITIONS)
    own.enable_padding(pad_id=own.token_to_id("[PAD]"))
    encodings = own.encode_batch(texts)
    return {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }


@pytest.fixture(scope="module")
def reference(built: Built) -> tuple[np.ndarray, list[str]]:
    """(logits, labels) of the original file on the tokenizer's own ids: no aiaas code."""
    session = ort.InferenceSession(str(built.model), providers=["CPUExecutionProvider"])
    logits = np.asarray(session.run(None, own_encode(built.tokenizer, TEXTS))[0])
    return logits, [hf_transformer.LABELS[i] for i in logits.argmax(axis=1)]


@pytest.fixture(scope="module")
def server(built: Built) -> Iterator[ServeProcess]:
    yield from start_serve(built.store.root)


@pytest.fixture
def http(server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        yield client


def labels_of(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [row["label"] for row in answer.json()["predictions"]]


def test_publish_records_the_tokenizer(built: Built) -> None:
    manifest = Registry(built.store).manifest(MODEL, "1")
    pre = manifest.preprocessing
    assert pre["tokenizer"] == "huggingface" and pre["vocab_file"] == "tokenizer.json"
    assert (pre["max_length"], pre["vocab_size"], pre["embedding_rows"]) == (
        POSITIONS,
        VOCAB,
        VOCAB,
    )
    assert (pre["mask_input"], pre["type_ids_input"]) == ("attention_mask", "token_type_ids")
    stored = built.store.get_bytes(f"models/{MODEL}/versions/1/tokenizer.json")
    assert stored == built.tokenizer.read_bytes()
    fits = f"vocabulary of {VOCAB} tokens fits the word embedding of {VOCAB} rows"
    assert fits in built.published
    assert "texts longer than 24 tokens are cut to the first 24" in built.published


def test_monitor_says_how_to_give_it_a_drift_baseline(
    built: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    """A text model published from elsewhere gets its baseline from a file of texts
    (tests/infra/test_hf_text_drift.py); monitor names the command and the files it reads."""
    assert main(["--store", built.store.uri, "monitor", MODEL, "--no-png"]) == 1
    assert capsys.readouterr().err == (
        f"aiaas monitor: error: {MODEL}:1 has no drift baseline; a text model's drift baseline "
        "(the lengths in tokens and unknown-token shares of texts like its training's) is "
        f"written by `aiaas train`, or by `aiaas baseline {MODEL}:1 TEXTS` from a file of such "
        "texts (a .csv with its 'text' column, a .jsonl of records, or one text a line)\n"
    )


def test_served_ids_are_the_tokenizers_own(built: Built) -> None:
    pool = ModelPool(Registry(built.store), ArtifactCache(built.store, built.root / "cache"))
    loaded = pool.load_version(MODEL, "1")
    assert loaded.text is not None and loaded.text.vocabulary.kind == "huggingface"
    served = loaded.text.vocabulary.feeds(TEXTS, "input_ids")
    expected = own_encode(built.tokenizer, TEXTS)
    assert served.keys() == expected.keys()
    for name, ids in expected.items():
        np.testing.assert_array_equal(served[name], ids, err_msg=name)
    assert served["input_ids"].shape[1] == POSITIONS  # the long text, truncated


def test_simple_json_inputs_and_records(
    http: httpx.Client, reference: tuple[np.ndarray, list[str]]
) -> None:
    logits, labels = reference
    assert len(set(labels)) > 1, "the test model should tell the texts apart"
    url = f"/models/{MODEL}/predict"
    answer = http.post(url, json={"inputs": TEXTS})
    assert labels_of(answer) == labels
    np.testing.assert_allclose(answer.json()["outputs"]["logits"], logits, atol=1e-4)
    records = [{"id": i, "text": text} for i, text in enumerate(TEXTS)]
    assert labels_of(http.post(url, json={"instances": records})) == labels
    assert labels_of(http.post(url, json={"instances": TEXTS})) == labels
    assert labels_of(http.post(url, json={"inputs": TEXTS[1]})) == labels[1:2]


def test_oip_json_bytes_tensor(http: httpx.Client, reference: tuple[np.ndarray, list[str]]) -> None:
    logits, _ = reference
    tensor = {"name": "input_ids", "datatype": "BYTES", "shape": [len(TEXTS)], "data": TEXTS}
    answer = http.post(f"/v2/models/{MODEL}/infer", json={"inputs": [tensor]})
    assert answer.status_code == 200, answer.text
    out = answer.json()["outputs"][0]
    assert out["name"] == "logits" and out["shape"] == list(logits.shape)
    np.testing.assert_allclose(np.reshape(out["data"], logits.shape), logits, atol=1e-4)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_bytes_tensor(
    server: ServeProcess, reference: tuple[np.ndarray, list[str]], binary: bool
) -> None:
    logits, _ = reference
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=30)
    try:
        text = np.array([[t.encode()] for t in TEXTS], dtype=object)  # [N, 1], as Triton sends
        tensor = triton.InferInput("input_ids", list(text.shape), "BYTES")
        tensor.set_data_from_numpy(text, binary_data=binary)
        wanted = [triton.InferRequestedOutput("logits", binary_data=binary)]
        result = client.infer(MODEL, [tensor], outputs=wanted)
        np.testing.assert_allclose(result.as_numpy("logits"), logits, atol=1e-4)
    finally:
        client.close()


def test_batch_jsonl_text_column(
    built: Built, reference: tuple[np.ndarray, list[str]], tmp_path: Path
) -> None:
    _, labels = reference
    lines = [json.dumps({"id": i, "text": t}) for i, t in enumerate(TEXTS)]
    lines.insert(2, json.dumps({"id": "blank", "text": ""}))  # a bad row; the rest still scores
    key = f"batch/{MODEL}/input/texts.jsonl"
    built.store.put_bytes(key, ("\n".join(lines) + "\n").encode())
    summary = run(built.store, tmp_path, key)
    assert (summary["scored_rows"], summary["failed_rows"]) == (len(TEXTS), 1), summary
    rows = read_jsonl(built.store, summary["output"])
    assert [row["pred_label"] for row in rows] == labels
    errors = read_jsonl(built.store, summary["errors"])
    assert errors == [{"line": 3, "error": "'text' is empty; there is no text to score"}]


def test_tokenizer_route_and_metadata(http: httpx.Client, built: Built) -> None:
    meta = http.get(f"/v2/models/{MODEL}").json()
    path = f"/models/{MODEL}/versions/1/tokenizer"
    assert meta["parameters"]["text"] == {
        "input": "input_ids",
        "datatype": "BYTES",
        "max_length": POSITIONS,
        "tokenizer": {"kind": "huggingface", "path": path},
    }
    for url in (path, f"/models/{MODEL}/tokenizer"):
        answer = http.get(url)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-aiaas-tokenizer"] == "huggingface"
        assert answer.headers["x-aiaas-version"] == "1"
        assert answer.content == built.tokenizer.read_bytes()
    # What a client does with it: the same ids as serving.
    own = Tokenizer.from_str(http.get(path).text)
    assert (
        own.encode(TEXTS[0]).ids == own_encode(built.tokenizer, TEXTS[:1])["input_ids"][0].tolist()
    )


def test_long_text_is_truncated_not_an_error(
    http: httpx.Client, built: Built, reference: tuple[np.ndarray, list[str]]
) -> None:
    logits, _ = reference
    url = f"/models/{MODEL}/predict"
    words = TEXTS[-1].split()
    head = " ".join(words[: POSITIONS - 2])  # what is read: [CLS] + 22 words + [SEP]
    answer = http.post(url, json={"inputs": [head]}).json()["outputs"]["logits"]
    np.testing.assert_allclose(answer, logits[-1:], atol=1e-4)
    longest = " ".join(["parcel"] * 100_000)  # far past any position the model has
    assert http.post(url, json={"inputs": [longest]}).status_code == 200


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"inputs": [""]}, "input 'input_ids' row 0 is empty; send some text"),
        ({"inputs": ["fine", "  "]}, "input 'input_ids' row 1 is empty; send some text"),
        ({"instances": [{"id": 1}]}, "instances[0] is missing the text field 'text'"),
        ({"inputs": [5, "fine"]}, "input 'input_ids' row 0 must be text; got int"),
        ({"inputs": ["fine", 5.5]}, "input 'input_ids' row 1 must be text; got float"),
        (
            {"inputs": {"input_ids": [[2] * 30], "attention_mask": [[1] * 30],
                        "token_type_ids": [[0] * 30]}},
            "input 'input_ids' has 30 tokens a row; this model reads at most 24: send raw text "
            "(truncated for you) or at most 24 ids",
        ),
    ],
)  # fmt: skip
def test_bad_text_is_a_clear_422(http: httpx.Client, body: object, error: str) -> None:
    answer = http.post(f"/models/{MODEL}/predict", json=body)
    assert (answer.status_code, answer.json()) == (422, {"error": error})


def test_non_utf8_bytes_tensor_is_a_422(server: ServeProcess) -> None:
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=30)
    try:
        tensor = triton.InferInput("input_ids", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([b"caf\xe9"], dtype=object), binary_data=True)
        with pytest.raises(InferenceServerException) as info:
            client.infer(MODEL, [tensor])
        assert info.value.status() == "422"
        assert info.value.message() == (
            "tensor 'input_ids' BYTES element 0 is not UTF-8 text (byte 0xe9 at offset 3)"
        )
    finally:
        client.close()


def test_a_hf_tokenizer_model_is_explained_token_by_token(http: httpx.Client) -> None:
    # Token occlusion over the tokenizer's own split (tests/infra/test_explain_hf_tokenizer.py
    # checks the values against the Shapley formula); it used to be a 422.
    answer = http.post(f"/models/{MODEL}/explain", json={"inputs": ["where is my parcel"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["explanations"][0]["tokens"] == ["where", "is", "my", "parcel"]


# ---- refused at publish: nothing written ---------------------------------------------------


def refused(tmp_path: Path, model: Path, *argv: str) -> str:
    store = LocalStore(tmp_path / "refused")
    code, out, err = publish(store, model, *argv)
    assert (code, out) == (1, ""), err
    assert not Registry(store).models(), "a refused publish must write nothing"
    return err.strip().removeprefix("aiaas publish: error: ")


def test_vocabulary_that_does_not_fit_the_embedding(built: Built, tmp_path: Path) -> None:
    bigger = hf_transformer.transformer(tmp_path / "bigger.onnx", rows=30522)
    error = refused(tmp_path, bigger, "--tokenizer", str(built.tokenizer))
    assert error == (
        f"the tokenizer has {VOCAB} tokens but the model's word embedding has 30522 rows: this "
        "tokenizer.json is not the one the model was trained with"
    )
    smaller = hf_transformer.transformer(tmp_path / "smaller.onnx", rows=40)
    assert f"has {VOCAB} tokens but the model's word embedding has 40 rows" in refused(
        tmp_path, smaller, "--tokenizer", str(built.tokenizer)
    )


def test_max_length_past_the_positions_fails_at_publish(built: Built, tmp_path: Path) -> None:
    error = refused(
        tmp_path, built.model, "--tokenizer", str(built.tokenizer), "--max-length", "64"
    )
    assert error.startswith("the model fails on a text of 64 tokens: ")
    assert error.endswith("give --max-length with the number of positions it reads")


def test_not_a_tokenizer_and_not_a_transformer(built: Built, tmp_path: Path) -> None:
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"vocab": {"a": 0}}')
    assert refused(tmp_path, built.model, "--tokenizer", str(bad)).startswith(
        f"--tokenizer {bad}: not a Hugging Face tokenizer.json: "
    )
    from tests import onnx_factory

    linear = onnx_factory.linear_classifier(tmp_path / "linear.onnx")
    assert refused(tmp_path, linear, "--tokenizer", str(built.tokenizer)) == (
        "no input of the model takes token ids (int64 [N, L], e.g. 'input_ids'): it has "
        "['x float32 [-1, 4]']"
    )
    assert refused(tmp_path, built.model, "--max-length", "8") == (
        "--max-length and --text-field go with --tokenizer"
    )


def test_a_model_without_its_tokenizer_is_not_served(built: Built, tmp_path: Path) -> None:
    """The manifest says Hugging Face but the file carries no tokenizer: 503, never wrong ids."""
    from dataclasses import replace

    from functions.runtime.errors import ModelUnavailable
    from functions.runtime.model import LoadedModel

    manifest = Registry(built.store).manifest(MODEL, "1")
    original = hf_transformer.transformer(tmp_path / "m.onnx", positions=POSITIONS)
    from functions.runtime.cache import sha256_file

    file = replace(manifest.file, sha256=sha256_file(original), size=original.stat().st_size)
    with pytest.raises(ModelUnavailable) as info:
        LoadedModel(replace(manifest, file=file), original)
    assert "its manifest names a Hugging Face tokenizer but its file carries none" in str(
        info.value
    )
    assert hf_tokenizer.METADATA_KEY == "aiaas.hf_tokenizer"


def test_without_tokenizers_the_extra_is_named(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A base install (no `text` extra): publish and serving each say what to install."""
    from functions.runtime.errors import ModelUnavailable
    from functions.runtime.model import LoadedModel

    monkeypatch.setitem(sys.modules, "tokenizers", None)  # as if not installed
    hint = "Hugging Face tokenizers need the tokenizers package: pip install 'aiaas[text]'"
    assert refused(tmp_path, built.model, "--tokenizer", str(built.tokenizer)) == (
        f"--tokenizer {built.tokenizer}: {hint}"
    )  # publish's own words (raised `from None`), naming the file and the extra
    manifest = Registry(built.store).manifest(MODEL, "1")
    stored = tmp_path / "stored.onnx"
    stored.write_bytes(built.store.get_bytes(f"models/{MODEL}/versions/1/model.onnx"))
    with pytest.raises(ModelUnavailable) as info:
        LoadedModel(manifest, stored)
    assert hint in str(info.value)
    assert info.value.public_message == f"model {MODEL}:1 cannot load its tokenizer here"
