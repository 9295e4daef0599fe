"""`aiaas publish` of a model whose external data location cannot be a file of its version.

A version holds `model.onnx`, `manifest.json` and the files beside them. A model exported
elsewhere may name its weights `../x.bin` or an absolute path (onnx writes what it is told), or
a name the version gives another file: `tokenizer.json` is the name `--tokenizer` publishes the
user's tokenizer under. That last one was published: the tokenizer silently dropped and the
weights stored as the version's `tokenizer.json`. Each is now refused before anything is sent,
with an error saying what to change, against the directory store and moto's S3 server.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import onnx
import pytest

from functions.runtime.s3store import S3Store
from functions.runtime.store import ObjectStore
from infra.cli.main import main
from tests import hf_transformer, onnx_factory

WIDTH = 1024  # float32: 4 KB of weights in the named file
SAVE_AS = "save the model with its data files beside it (onnx.save_model(..., location='model.onnx.data'))"


def model_naming(path: Path, location: str) -> Path:
    """y = x + w, w's bytes read from external data file `location`."""
    return onnx_factory.external_add(path, location, WIDTH)


def publish(store: ObjectStore, model: Path, *argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--store", store.uri, "publish", str(model), "--name", "m", *argv])
    return code, err.getvalue().strip().removeprefix("aiaas publish: error: ")


def nothing_published(store: ObjectStore) -> None:
    assert list(store.list_keys("models")) == [], "a refused publish must write nothing"
    if isinstance(store, S3Store):
        pending = store.client.list_multipart_uploads(Bucket=store.bucket)
        assert pending.get("Uploads", []) == []


@pytest.mark.parametrize("where", ["parent", "absolute"])
def test_a_data_file_outside_the_model_folder_is_refused(
    store: ObjectStore, tmp_path: Path, where: str
) -> None:
    outside = tmp_path / "x.bin"
    outside.write_bytes(np.ones(WIDTH, np.float32).tobytes())  # there, and readable
    location = "../x.bin" if where == "parent" else str(outside)
    model = model_naming(tmp_path / "export" / "model.onnx", location)
    code, err = publish(store, model, "--task", "other")
    assert (code, err) == (
        1,
        f"{model} keeps weights in external data file {location!r}, outside the model's folder "
        f"(a version holds only files beside its model): {SAVE_AS}",
    )
    nothing_published(store)


@pytest.mark.parametrize(
    ("location", "plain"),
    [("./x.bin", "x.bin"), ("weights/../x.bin", "x.bin"), ("a//x.bin", "a/x.bin")],
)
def test_a_data_file_beside_the_model_under_a_name_not_plain_is_told_its_plain_name(
    store: ObjectStore, tmp_path: Path, location: str, plain: str
) -> None:
    """Inside the folder, so not 'outside the model's folder' (said before): the name is what
    a version cannot keep, and the refusal names the one to save it under."""
    model = model_naming(tmp_path / "export" / "model.onnx", location)
    (model.parent / plain).parent.mkdir(parents=True, exist_ok=True)
    (model.parent / plain).write_bytes(np.ones(WIDTH, np.float32).tobytes())
    (model.parent / "weights").mkdir(exist_ok=True)
    code, err = publish(store, model, "--task", "other")
    assert code == 1
    assert err == (
        f"{model} names its external data file {location!r}, not as a plain relative name ('.', "
        "'..', '//' or '\\' in it); a version keeps each file under one plain name, so save "
        f"the model naming it so (onnx.save_model(..., location={plain!r}))"
    )
    nothing_published(store)


@pytest.mark.parametrize("name", ["model.onnx", "manifest.json"])
def test_a_data_file_named_as_a_file_of_the_version_is_refused(
    store: ObjectStore, tmp_path: Path, name: str
) -> None:
    model = tmp_path / "export" / "model.onnx"
    if name != "model.onnx":
        (model.parent).mkdir(parents=True)
        (model.parent / name).write_bytes(np.ones(WIDTH, np.float32).tobytes())
    model_naming(model, name)
    code, err = publish(store, model, "--task", "other")
    assert (code, err) == (
        1,
        f"{model} names {name!r} as its external data file, a name the version's own {name} "
        "takes; save the weights under another name ('model.onnx.data')",
    )
    nothing_published(store)


def test_weights_named_like_the_tokenizer_are_refused_with_tokenizer(
    store: ObjectStore, tmp_path: Path
) -> None:
    """The user's tokenizer and the model's weights would both be the version's tokenizer.json."""
    single = hf_transformer.transformer(tmp_path / "single.onnx", d=32)
    model = tmp_path / "export" / "model.onnx"
    model.parent.mkdir()
    onnx.save_model(
        onnx.load(str(single)),
        str(model),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="tokenizer.json",
    )
    tokenizer = hf_transformer.tokenizer_json(tmp_path / "tokenizer.json")
    labels = ",".join(hf_transformer.LABELS)
    code, err = publish(store, model, "--labels", labels, "--tokenizer", str(tokenizer))
    assert (code, err) == (
        1,
        "the model keeps its weights in 'tokenizer.json', the name this version's "
        "tokenizer.json file takes: the two would overwrite each other; save the model's "
        "external data under another name (onnx.save_model(..., location='model.onnx.data'))",
    )
    nothing_published(store)
    assert publish(store, model, "--labels", labels) == (0, "")  # token ids in: nothing collides


@pytest.mark.parametrize("name", ["background.json", "drift_baseline.json", "card/w.bin"])
def test_a_data_file_named_as_a_file_written_later_is_refused(
    store: ObjectStore, tmp_path: Path, name: str
) -> None:
    """Weights as background.json were published: `aiaas baseline` then kept them ("kept the
    existing background.json") and explain and monitor failed reading them as JSON."""
    model = tmp_path / "export" / "model.onnx"
    (model.parent / name).parent.mkdir(parents=True)
    (model.parent / name).write_bytes(np.ones(WIDTH, np.float32).tobytes())
    model_naming(model, name)
    code, err = publish(store, model, "--task", "other")
    what = "card/" if name.startswith("card/") else name
    assert (code, err) == (
        1,
        f"{model} names {name!r} as its external data file, a name the version's own {what} "
        "takes once written (by `aiaas baseline` or the card); save the weights under another "
        "name ('model.onnx.data')",
    )
    nothing_published(store)
