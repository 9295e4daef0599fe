"""`aiaas publish --tokenizer` and `--quantize` on a transformer that keeps its weights in an
external data file, as one over 2 GB must: published to a directory store and to moto's S3
server on loopback, then served raw text through the predict handler (a real API Gateway v2
event) from that store.

The reference is the user's side with no aiaas code: the `tokenizers` library's own encode and
a bare onnxruntime session of the exported (unquantized) model. A quantized variant must answer
the reference's labels on at least 90% of texts, the bar the other quantize tests hold
(tests/infra/test_publish_quantize.py), and exactly what its own stored files answer.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import shutil
from http import HTTPStatus
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from functions.runtime.cache import sha256_file
from functions.runtime.manifest import ArtifactFile
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import ObjectStore
from infra.cli.main import main
from infra.local.functions import load_handler
from tests import hf_transformer, int8_cpu
from tests.functions.test_predict_events import load_event
from tests.infra.test_publish_tokenizer import own_encode

MODEL = "ext-bert"
DATA = "weights.bin"  # the exporter's name for the data file
WORDS = ["where is my parcel", "i was charged twice", "the app crashes", "reset my password"]
WORDS += ["my order never arrived", "refund my money", "cancel my subscription", "login help"]
WORDS += ["the screen is broken", "tracking says in transit", "open settings", "late package"]
# 24 texts: each phrase alone and followed by another.
TEXTS = [*WORDS, *(f"{a} and {b}" for a, b in zip(WORDS, WORDS[3:] + WORDS[:3], strict=True))]
LABELS = ",".join(hf_transformer.LABELS)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test transformer (d=64) saved as `model.onnx` + `weights.bin` (onnx's own saver)."""
    root = tmp_path_factory.mktemp("ext")
    single = hf_transformer.transformer(root / "single.onnx", d=64)
    path = root / "export" / "model.onnx"
    path.parent.mkdir()
    onnx.save_model(
        onnx.load(str(single)),
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=DATA,
    )
    assert path.stat().st_size < 8_000 < path.with_name(DATA).stat().st_size
    return path


@pytest.fixture(scope="module")
def tokenizer(exported: Path) -> Path:
    return hf_transformer.tokenizer_json(exported.parent.parent / "tokenizer.json")


@pytest.fixture(scope="module")
def reference(exported: Path, tokenizer: Path) -> tuple[np.ndarray, list[str]]:
    """(logits, labels) of the exported model on the tokenizer's own ids."""
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    logits = np.asarray(session.run(None, own_encode(tokenizer, TEXTS))[0])
    labels = [hf_transformer.LABELS[i] for i in logits.argmax(axis=1)]
    assert len(set(labels)) > 1, "texts that all get one label would prove little"
    return logits, labels


def publish(store: ObjectStore, model: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--store", store.uri, "publish", str(model), "--name", MODEL, *argv])
    return code, out.getvalue(), err.getvalue().strip().removeprefix("aiaas publish: error: ")


def serve_text(store: ObjectStore, cache: Path, texts: list[str]) -> dict[str, Any]:
    """The predict handler, cold, answering a simple-JSON request of raw texts."""
    event = copy.deepcopy(load_event("predict_simple"))
    path = f"/models/{MODEL}/predict"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["routeKey"] = event["requestContext"]["routeKey"] = f"POST {path}"
    event["rawQueryString"], event["queryStringParameters"] = "", None
    event["body"] = json.dumps({"inputs": texts})
    event["headers"]["content-length"] = str(len(event["body"]))
    env = {
        "AIAAS_MODEL": MODEL,
        "AIAAS_MODEL_SELECTOR": ":1",
        "AIAAS_STORE": store.uri,
        "AIAAS_CACHE_DIR": str(cache),
    }
    response = load_handler("functions.predict.handler.handler", env)(event, None)
    assert response["statusCode"] == HTTPStatus.OK, response["body"]
    return json.loads(response["body"])  # type: ignore[no-any-return]


def download(store: ObjectStore, folder: Path) -> Path:
    """The stored version's files in `folder`, checked against the manifest; its model.onnx."""
    manifest = Registry(store).manifest(MODEL, "1")
    prefix = f"models/{MODEL}/versions/1"
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(store.get_bytes(f"{prefix}/model.onnx"))
    assert sha256_file(folder / "model.onnx") == manifest.file.sha256
    for item in manifest.files:
        (folder / item.path).parent.mkdir(parents=True, exist_ok=True)  # card/
        (folder / item.path).write_bytes(store.get_bytes(f"{prefix}/{item.path}"))
        assert (item.size, item.sha256) == (
            (folder / item.path).stat().st_size,
            sha256_file(folder / item.path),
        )
    return folder / "model.onnx"


def nothing_published(store: ObjectStore) -> None:
    assert list(store.list_keys("models")) == [], "a refused publish must write nothing"
    if isinstance(store, S3Store):
        pending = store.client.list_multipart_uploads(Bucket=store.bucket)
        assert pending.get("Uploads", []) == []


def test_tokenizer_publishes_every_file_and_serves_raw_text(
    store: ObjectStore,
    exported: Path,
    tokenizer: Path,
    reference: tuple[np.ndarray, list[str]],
    tmp_path: Path,
) -> None:
    code, out, err = publish(store, exported, "--labels", LABELS, "--tokenizer", str(tokenizer))
    assert code == 0, err
    assert "vocabulary of 55 tokens fits the word embedding of 55 rows" in out
    data = exported.with_name(DATA)
    assert Registry(store).manifest(MODEL, "1").files[:2] == (
        ArtifactFile(DATA, data.stat().st_size, sha256_file(data), "weights"),
        ArtifactFile("tokenizer.json", tokenizer.stat().st_size, sha256_file(tokenizer), "extra"),
    )
    assert Registry(store).manifest(MODEL, "1").files[2].path == "card/card.md"
    stored = download(store, tmp_path / "stored")
    assert stored.with_name(DATA).read_bytes() == data.read_bytes()  # weights as exported
    logits, labels = reference
    answer = serve_text(store, tmp_path / "cache", TEXTS)
    assert [row["label"] for row in answer["predictions"]] == labels
    served = np.asarray(serve_text(store, tmp_path / "cache2", TEXTS[:2])["outputs"]["logits"])
    np.testing.assert_allclose(served, logits[:2], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("method", ["int8", "fp16"])
def test_quantized_variant_is_a_multi_file_version(
    store: ObjectStore,
    method: str,
    exported: Path,
    tokenizer: Path,
    reference: tuple[np.ndarray, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, labels = reference
    # Run where a user's folder holds a model.onnx.data (another export's, the usual name): onnx
    # checked the variant's data file name against the working directory and refused.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.onnx.data").write_bytes(b"another model's weights")
    data = tmp_path / "texts.csv"
    data.write_text(
        "text,label\n" + "".join(f"{t},{y}\n" for t, y in zip(TEXTS, labels, strict=True))
    )
    argv = ("--labels", LABELS, "--tokenizer", str(tokenizer), "--data", str(data))
    if method == "int8" and int8_cpu.SATURATES:  # the gate refuses a 4-point drop here, rightly
        argv = (*argv, "--max-drop", "100")
    code, out, err = publish(store, exported, *argv, "--quantize", method)
    assert code == 0, err
    manifest = Registry(store).manifest(MODEL, "1")
    assert [(f.path, f.role) for f in manifest.files] == [
        ("model.onnx.data", "weights"),  # the variant keeps its weights outside the model too
        ("tokenizer.json", "extra"),
        ("card/card.md", "extra"),  # with --data: the variant's held-out metrics and plot
        ("card/confusion.png", "extra"),
        ("card/reliability.png", "extra"),  # its probabilities' calibration
    ]
    stored = download(store, tmp_path / "stored")
    record = manifest.extras["quantization"]
    source = exported.with_name(DATA)
    assert record["source"]["data_files"] == [
        {"file": DATA, "size": source.stat().st_size, "sha256": sha256_file(source)}
    ]
    assert record["source_bytes"] == exported.stat().st_size + source.stat().st_size
    assert stored.with_name("model.onnx.data").stat().st_size < record["quantized_bytes"]
    assert record["size_ratio"] < (0.55 if method == "fp16" else 0.35)
    assert f"{method}: {record['source_bytes']} -> {record['quantized_bytes']} bytes" in out

    served = [row["label"] for row in serve_text(store, tmp_path / "cache", TEXTS)["predictions"]]
    agreement = float(np.mean([a == b for a, b in zip(served, labels, strict=True)]))
    assert agreement >= 0.9, (served, labels)
    evaluation = record["evaluation"]
    assert (evaluation["before"], evaluation["rows"]) == (1.0, len(TEXTS))
    assert evaluation["after"] == pytest.approx(agreement, abs=1e-6)  # kept to 6 decimals
    # Serving answers what the stored variant's own files answer in a bare session.
    session = ort.InferenceSession(str(stored), providers=["CPUExecutionProvider"])
    own = np.asarray(session.run(None, own_encode(tokenizer, TEXTS))[0]).argmax(axis=1)
    assert served == [hf_transformer.LABELS[i] for i in own]
    assert (tmp_path / "model.onnx.data").read_bytes() == b"another model's weights"


def test_quantized_without_a_tokenizer(exported: Path, tmp_path: Path, s3_store: S3Store) -> None:
    code, _, err = publish(s3_store, exported, "--labels", LABELS, "--quantize", "int8")
    assert code == 0, err
    manifest = Registry(s3_store).manifest(MODEL, "1")
    assert [f.path for f in manifest.files] == ["model.onnx.data", "card/card.md"]
    stored = download(s3_store, tmp_path / "stored")
    assert [i.name for i in ort.InferenceSession(str(stored)).get_inputs()] == [
        "input_ids",
        "attention_mask",
        "token_type_ids",
    ]


def test_a_tokenizer_that_does_not_fit_is_refused(
    store: ObjectStore, exported: Path, tmp_path: Path
) -> None:
    extra = [f"word{i}" for i in range(200)]
    bigger = hf_transformer.tokenizer_json(
        tmp_path / "big.json", hf_transformer.vocabulary() + extra
    )
    for options in ((), ("--quantize", "int8")):
        code, out, err = publish(
            store, exported, "--labels", LABELS, "--tokenizer", str(bigger), *options
        )
        assert (code, out) == (1, "")
        assert err == (
            "the tokenizer has 255 tokens but the model's word embedding has 55 rows: this "
            "tokenizer.json is not the one the model was trained with"
        )
        nothing_published(store)


def test_a_missing_data_file_is_named_and_nothing_is_published(
    store: ObjectStore, exported: Path, tokenizer: Path, tmp_path: Path
) -> None:
    alone = tmp_path / "alone" / "model.onnx"
    alone.parent.mkdir()
    shutil.copyfile(exported, alone)  # without weights.bin
    expected = (
        f"{alone} keeps weights in external data file '{DATA}', which is not beside it "
        f"({alone.with_name(DATA)} is missing); publish the model with all its data files"
    )
    for options in ((), ("--tokenizer", str(tokenizer)), ("--quantize", "fp16")):
        code, out, err = publish(store, alone, "--labels", LABELS, *options)
        assert (code, out, err) == (1, "", expected)
        nothing_published(store)
