"""A tokenizer.json with a FIXED padding length (`"strategy": {"Fixed": 24}`, as many
sentence-transformers / MiniLM exports save), over a BERT of 24 positions and a dynamic
sequence axis (tests/hf_transformer.py).

Padded as the file says, every request paid for all 24 positions (a 8-token text at 128: twice
the latency alone, 4x a batch of 32; docs/text.md). Publish now checks the model answers a short
text the same at its own width as at the fixed one, and then serving pads a batch to its longest
row. The reference is the user's side with no aiaas code: `Tokenizer.from_file(...)
.encode_batch` (the file's fixed padding) and a bare onnxruntime session of the original file.
A model that reads every position (no mask) keeps the fixed length, as it was trained.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from functions.runtime.cache import ArtifactCache
from functions.runtime.hf_tokenizer import METADATA_KEY, HfInputs, HfTokenizer
from functions.runtime.model import hf_text_feeds
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from functions.runtime.text_input import text_input
from tests import hf_transformer
from tests.batch_support import read_jsonl, run
from tests.infra.test_publish_tokenizer import publish
from tests.infra.test_serve import ServeProcess, start_serve

pytestmark = pytest.mark.xdist_group("hf_fixed_padding")

FIXED = 24
MASKED, UNMASKED, SHORTER = "bert-fixed", "bert-nomask", "bert-fixed16"
TEXTS = ["where is my parcel", "the app crashes on the login screen", "cancel", "reset it"]


@dataclasses.dataclass(frozen=True)
class Built:
    store: LocalStore
    root: Path
    tokenizer: Path
    models: dict[str, Path]
    notes: dict[str, str]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("fixed")
    own = Tokenizer.from_file(str(hf_transformer.tokenizer_json(root / "tokenizer.json")))
    own.enable_padding(pad_id=0, pad_token="[PAD]", length=FIXED)
    own.save(str(root / "tokenizer.json"))
    masked = hf_transformer.transformer(root / "masked.onnx", positions=FIXED)
    unmasked = hf_transformer.transformer(root / "none.onnx", positions=FIXED, mask="none")
    store = LocalStore(root / "store")
    labels = ("--labels", ",".join(hf_transformer.LABELS), "--tokenizer", str(own_path(root)))
    notes = {}
    for name, model, extra in ((MASKED, masked, ()), (UNMASKED, unmasked, ()),
                               (SHORTER, masked, ("--max-length", "16"))):  # fmt: skip
        code, out, err = publish(store, model, *labels, *extra, name=name)
        assert code == 0, err
        notes[name] = out
    models = {MASKED: masked, UNMASKED: unmasked, SHORTER: masked}
    return Built(store, root, own_path(root), models, notes)


def own_path(root: Path) -> Path:
    return root / "tokenizer.json"


def reference(built: Built, name: str, texts: list[str]) -> np.ndarray:
    """The user's own: encode_batch as the file says (truncated at max_length), bare session."""
    own = Tokenizer.from_file(str(built.tokenizer))
    own.enable_truncation(16 if name == SHORTER else FIXED)
    encodings = own.encode_batch(texts)
    feeds = {
        key: np.array([getattr(e, attr) for e in encodings], dtype=np.int64)
        for key, attr in (
            ("input_ids", "ids"),
            ("attention_mask", "attention_mask"),
            ("token_type_ids", "type_ids"),
        )
    }
    if name == UNMASKED:
        del feeds["attention_mask"]
    assert feeds["input_ids"].shape[1] == FIXED
    session = ort.InferenceSession(str(built.models[name]), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, feeds)[0])


@pytest.fixture(scope="module")
def server(built: Built) -> Iterator[ServeProcess]:
    yield from start_serve(built.store.root)


@pytest.fixture
def http(server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        yield client


def test_a_masked_model_pads_to_the_longest_row_and_one_without_a_mask_to_the_fixed_length(
    built: Built,
) -> None:
    registry = Registry(built.store)
    pool = ModelPool(registry, ArtifactCache(built.store, built.root / "cache"))
    widths = {}
    for name in (MASKED, UNMASKED, SHORTER):
        loaded = pool.load_version(name, "1")
        assert loaded.text is not None
        widths[name] = [loaded.text.vocabulary.encode(t).shape[1] for t in (TEXTS[2:3], TEXTS)]
    assert widths == {MASKED: [3, 9], UNMASKED: [FIXED, FIXED], SHORTER: [3, 9]}
    pre = {n: registry.manifest(n, "1").preprocessing for n in (MASKED, UNMASKED, SHORTER)}
    assert pre[MASKED]["pad_to_longest"] is True
    assert pre[MASKED]["padding"] == "right side with id 0, to the longest"
    assert "pad_to_longest" not in pre[UNMASKED]
    assert pre[UNMASKED]["padding"] == f"right side with id 0, to {FIXED}"
    assert (pre[SHORTER]["max_length"], pre[SHORTER]["max_width"]) == (16, FIXED)
    assert "not to tokenizer.json's fixed 24" in built.notes[MASKED]
    assert "not to tokenizer.json's fixed" not in built.notes[UNMASKED]


def test_a_manifest_without_pad_to_longest_keeps_the_fixed_length(built: Built) -> None:
    """Published the morning serving first honoured the file's padding: checked at 24 only."""
    manifest = Registry(built.store).manifest(MASKED, "1")
    pre = {k: v for k, v in manifest.preprocessing.items() if k != "pad_to_longest"}
    older = dataclasses.replace(manifest, preprocessing=pre)
    session = ort.InferenceSession(str(built.root / "store/models" / MASKED / "versions/1" /
                                       manifest.file.path))  # fmt: skip
    document = session.get_modelmeta().custom_metadata_map[METADATA_KEY]
    text = text_input(older)
    assert text is not None
    assert hf_text_feeds(older, text, document).vocabulary.encode(TEXTS[2:3]).shape == (1, FIXED)


@pytest.mark.parametrize("name", [MASKED, UNMASKED, SHORTER])
def test_simple_json_one_text_and_a_batch_answer_as_the_users_own_pipeline(
    http: httpx.Client, built: Built, name: str
) -> None:
    for texts in (TEXTS[2:3], TEXTS):
        answer = http.post(f"/models/{name}/predict", json={"inputs": texts})
        assert answer.status_code == 200, answer.text
        expected = reference(built, name, texts)
        np.testing.assert_allclose(answer.json()["outputs"]["logits"], expected, atol=1e-4)


@pytest.mark.parametrize("name", [MASKED, SHORTER])
def test_the_users_own_fixed_width_ids_are_accepted(
    http: httpx.Client, built: Built, name: str
) -> None:
    own = Tokenizer.from_file(str(built.tokenizer))
    own.enable_truncation(16 if name == SHORTER else FIXED)
    encodings = own.encode_batch(TEXTS)
    body = {
        "input_ids": [e.ids for e in encodings],
        "attention_mask": [e.attention_mask for e in encodings],
        "token_type_ids": [e.type_ids for e in encodings],
    }
    answer = http.post(f"/models/{name}/predict", json={"inputs": body})
    assert answer.status_code == 200, answer.text
    expected = reference(built, name, TEXTS)
    np.testing.assert_allclose(answer.json()["outputs"]["logits"], expected, atol=1e-4)


def test_explanations_and_batch_scoring_answer_as_the_users_own(
    http: httpx.Client, built: Built, tmp_path: Path
) -> None:
    expected = reference(built, MASKED, TEXTS)
    answer = http.post(f"/models/{MASKED}/explain", json={"inputs": TEXTS[:2]})
    assert answer.status_code == 200, answer.text
    shifted = np.exp(expected[:2] - expected[:2].max(axis=1, keepdims=True))
    got = [e["prediction"] for e in answer.json()["explanations"]]
    np.testing.assert_allclose(got, shifted / shifted.sum(axis=1, keepdims=True), atol=1e-4)
    key = f"batch/{MASKED}/input/texts.jsonl"
    built.store.put_bytes(key, "".join(json.dumps({"text": t}) + "\n" for t in TEXTS).encode())
    summary = run(built.store, tmp_path, key, chunk_rows=2)  # chunks of different widths
    assert summary["scored_rows"] == len(TEXTS), summary
    logits = [r["pred_logits"] for r in read_jsonl(built.store, summary["output"])]
    np.testing.assert_allclose(logits, expected, atol=1e-4)


@pytest.mark.parametrize(
    ("multiple", "width", "shapes"),
    [
        (None, None, [3, 9]),  # the longest row
        (8, None, [8, 16]),  # rounded up to the file's multiple, never past its 24
        (None, 30, [30, 30]),  # the ids input's fixed width in the graph: exactly that
    ],
)
def test_the_longest_row_rounds_to_the_multiple_and_a_graphs_fixed_width_stays(
    tmp_path: Path, multiple: int | None, width: int | None, shapes: list[int]
) -> None:
    own = Tokenizer.from_file(str(hf_transformer.tokenizer_json(tmp_path / "t.json")))
    own.enable_padding(pad_id=0, pad_token="[PAD]", length=FIXED, pad_to_multiple_of=multiple)
    inputs = HfInputs("input_ids", "attention_mask", "token_type_ids")
    served = HfTokenizer(own.to_str(), 20, inputs, width, to_longest=True)
    assert [served.encode(t).shape[1] for t in (TEXTS[2:3], TEXTS)] == shapes
    assert served.width == (width or FIXED)  # the user's own ids may be as wide
