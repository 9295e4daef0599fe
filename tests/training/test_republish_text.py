"""A text model `aiaas train` exported, published again with `aiaas publish` (another store,
another name, an int8 variant): it still reads raw text, through the vocabulary its file carries.
It was served as a plain ids model: raw text a 422, `--data` with a text column refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from functions.runtime.cache import ArtifactCache
from functions.runtime.codecs import simple
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from functions.runtime.tokenizer import VOCAB_FILE
from infra.cli.main import main
from tests.training.conftest import Published

TEXTS = ["where is my parcel", "I was charged twice on my card", "911", "please reset my password"]


def answers(store: LocalStore, name: str, version: str, tmp_path: Path) -> list[str]:
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / f"cache-{name}"))
    model = pool.load_version(name, version)
    text = model.manifest.preprocessing["text_input"]
    doc = simple.encode(model.manifest, model.predict({text: np.array(TEXTS, dtype=object)}))
    return [row["label"] for row in doc["predictions"]]


@pytest.mark.parametrize("quantize", [(), ("--quantize", "int8")], ids=["plain", "int8"])
def test_a_trained_text_model_published_again_reads_raw_text(
    published: Published,
    tmp_path: Path,
    quantize: tuple[str, ...],
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = published.results["transformer"]
    labels = ",".join(result.manifest.labels)
    data = tmp_path / "texts.csv"
    data.write_text("text,label\n" + "".join(f"{t},{result.manifest.labels[0]}\n" for t in TEXTS))
    store = LocalStore(tmp_path / "store")
    argv = ["--store", store.uri, "publish", str(result.model_path), "--name", "again"]
    assert main([*argv, "--labels", labels, "--data", str(data), *quantize]) == 0
    out = capsys.readouterr().out
    assert "raw text: the vocabulary the file carries" in out
    manifest = Registry(store).manifest("again", "1")
    trained = result.manifest.preprocessing
    assert manifest.preprocessing == trained | {"text_field": "text"}
    assert store.get_bytes(f"models/again/versions/1/{VOCAB_FILE}") == (
        result.extra_files[VOCAB_FILE].read_bytes()
    )
    assert manifest.metrics["held_out"]["rows"] == len(TEXTS)
    served = answers(store, "again", "1", tmp_path)
    trained_store = LocalStore(published.store_dir)
    original = answers(trained_store, result.manifest.name, result.manifest.version, tmp_path)
    if not quantize:
        assert served == original
    assert len(served) == len(TEXTS)
