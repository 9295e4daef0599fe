"""The record field raw text comes in under is never one of the model's inputs (HF text hunt #3).

`aiaas publish --tokenizer --text-field attention_mask` (or `input_ids`), or the default field
`text` of a model whose ids input is itself named `text` (a plausible export name), was
published; token ids sent with their mask were then read as text (422 `input 'attention_mask'
takes one text per row`), and records of text under `text` were refused as holding "both
'text' and 'text'", where docs/text.md promises token ids keep working. Publish now refuses
such a field naming the clash; versions published before answer ids and text again. Served by
`aiaas serve`; the reference is the `tokenizers` library and a bare onnxruntime session.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import hf_transformer
from tests.infra.test_publish_tokenizer import POSITIONS, own_encode, publish, refused
from tests.infra.test_serve import ServeProcess, start_serve

LABELS = ("--labels", ",".join(hf_transformer.LABELS))
TEXTS = ["where is my parcel", "I was charged twice on my card", "the app crashes"]
BERT, NAMED = "bert", "named"  # ids input `input_ids`; ids input `text`


@dataclasses.dataclass(frozen=True)
class Built:
    root: Path
    store: LocalStore
    tokenizer: Path
    models: dict[str, Path]


def older(store: LocalStore, name: str, field: str) -> str:
    """Version 1 again with `field`, as publish wrote it before refusing such a field."""
    registry = Registry(store)
    manifest = registry.manifest(name, "1")
    pre = {**manifest.preprocessing, "text_field": field}
    version = registry.next_version(name)
    again = dataclasses.replace(manifest, version=version, preprocessing=pre)
    folder = store.root / "models" / name / "versions" / "1"
    registry.publish(
        again, folder / manifest.file.path, {f.path: folder / f.path for f in manifest.files}
    )
    return version


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("fields")
    tokenizer = hf_transformer.tokenizer_json(root / "tokenizer.json")
    models = {
        BERT: hf_transformer.transformer(root / "bert.onnx", positions=POSITIONS),
        NAMED: hf_transformer.transformer(
            root / "named.onnx", positions=POSITIONS, names={"input_ids": "text"}
        ),
    }
    store = LocalStore(root / "store")
    for name, extra in ((BERT, ()), (NAMED, ("--text-field", "content"))):
        code, _, err = publish(store, models[name], *LABELS, "--tokenizer", str(tokenizer),
                               *extra, name=name)  # fmt: skip
        assert code == 0, err
    assert older(store, BERT, "attention_mask") == "2"
    assert older(store, BERT, "input_ids") == "3"
    assert older(store, NAMED, "text") == "2"
    return Built(root, store, tokenizer, models)


def own(built: Built, name: str) -> tuple[dict[str, list[list[int]]], np.ndarray]:
    """The user's own token ids (under the model's names) and the original file's logits."""
    feeds = own_encode(built.tokenizer, TEXTS)
    if name == NAMED:
        feeds["text"] = feeds.pop("input_ids")
    session = ort.InferenceSession(str(built.models[name]), providers=["CPUExecutionProvider"])
    logits = np.asarray(session.run(None, feeds)[0])
    return {key: value.tolist() for key, value in feeds.items()}, logits


@pytest.fixture(scope="module")
def server(built: Built) -> Iterator[ServeProcess]:
    yield from start_serve(built.store.root)


@pytest.fixture
def http(server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        yield client


def logits_of(answer: httpx.Response) -> np.ndarray:
    assert answer.status_code == 200, answer.text
    return np.asarray(answer.json()["outputs"]["logits"])


@pytest.mark.parametrize(
    ("name", "argv", "error"),
    [
        (BERT, ("--text-field", "attention_mask"), "--text-field 'attention_mask' is the "
         "model's attention mask input: the attention mask sent under it would be read as "
         "text; give --text-field another name (default: 'text')"),
        (BERT, ("--text-field", "input_ids"), "--text-field 'input_ids' is the model's token "
         "ids input: the token ids sent under it would be read as text; give --text-field "
         "another name (default: 'text')"),
        (BERT, ("--text-field", "token_type_ids"), "--text-field 'token_type_ids' is the "
         "model's token type ids input: the token type ids sent under it would be read as "
         "text; give --text-field another name (default: 'text')"),
        (BERT, ("--text-field", " "), "--text-field ' ' names no field: give the record field "
         "and batch column raw text comes in under (default: 'text')"),
        (NAMED, (), "the model's token ids input is named 'text', the record field raw text "
         "comes in under by default: give --text-field with another name (e.g. --text-field "
         "content), so that the token ids sent as 'text' stay token ids"),
    ],
)  # fmt: skip
def test_a_field_named_as_a_model_input_is_refused(
    built: Built, tmp_path: Path, name: str, argv: tuple[str, ...], error: str
) -> None:
    argv = (*LABELS, "--tokenizer", str(built.tokenizer), *argv)
    assert refused(tmp_path, built.models[name], *argv) == error


def test_an_ids_input_named_text_takes_ids_and_text_under_another_field(
    http: httpx.Client, built: Built
) -> None:
    ids, logits = own(built, NAMED)
    url = f"/models/{NAMED}/versions/1/predict"
    np.testing.assert_allclose(logits_of(http.post(url, json={"inputs": ids})), logits, atol=1e-4)
    for body in (
        {"inputs": TEXTS},
        {"inputs": {"text": TEXTS}},  # strings under the ids input's name are text
        {"instances": [{"content": text} for text in TEXTS]},
    ):
        np.testing.assert_allclose(logits_of(http.post(url, json=body)), logits, atol=1e-4)


@pytest.mark.parametrize(("name", "version"), [(BERT, "2"), (BERT, "3"), (NAMED, "2")])
def test_a_version_published_with_such_a_field_takes_token_ids_again(
    http: httpx.Client, built: Built, name: str, version: str
) -> None:
    """Token ids with their mask were a 422 about text shapes; text still answers."""
    ids, logits = own(built, name)
    url = f"/models/{name}/versions/{version}/predict"
    np.testing.assert_allclose(logits_of(http.post(url, json={"inputs": ids})), logits, atol=1e-4)
    tensors = [
        {"name": key, "datatype": "INT64", "shape": [len(rows), len(rows[0])], "data": rows}
        for key, rows in ids.items()
    ]
    answer = http.post(f"/v2/models/{name}/versions/{version}/infer", json={"inputs": tensors})
    assert answer.status_code == 200, answer.text
    data = answer.json()["outputs"][0]["data"]
    np.testing.assert_allclose(np.reshape(data, logits.shape), logits, atol=1e-4)
    np.testing.assert_allclose(logits_of(http.post(url, json={"inputs": TEXTS})), logits, atol=1e-4)


def test_records_under_an_ids_input_named_text_are_text_again(
    http: httpx.Client, built: Built
) -> None:
    """Refused as holding "both 'text' and 'text'" by the version of field `text`."""
    _, logits = own(built, NAMED)
    records = {"instances": [{"text": text} for text in TEXTS]}
    answer = http.post(f"/models/{NAMED}/versions/2/predict", json=records)
    np.testing.assert_allclose(logits_of(answer), logits, atol=1e-4)
