"""`aiaas publish` never writes into the user's model folder, and takes the user's files however
they are linked.

The user's folder is made read-only (chmod, and for root, whom chmod does not stop, the
immutable attribute when `chattr` can set it); afterwards its listing, each file's bytes and link
count, and the folder's own mtime (which any file made and removed in it would move) must be as
before. The CLI runs as the user runs it (`python -m infra.cli.main`, a fresh process) with its
own TMPDIR, which must be empty again after each publish, whether it succeeded, failed or was
interrupted. The models: a transformer with its tokenizer.json (tests/hf_transformer.py) as one
file and with external data, and a 70 MB synthetic transformer (a single file big enough for
the signature read to map its weights through a graph file).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from bench.synthetic_transformer import SyntheticShape, write_model
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore, ObjectStore
from tests import hf_transformer
from tests.infra.test_publish_external_text import serve_text
from tests.infra.test_publish_tokenizer import own_encode

pytestmark = pytest.mark.usefixtures("stop_signals_as_in_a_terminal")

REPO = Path(__file__).resolve().parents[2]
LABELS = ",".join(hf_transformer.LABELS)
TEXTS = ["where is my parcel", "i was charged twice", "the app crashes", "reset my password"]
MODEL = "ext-bert"  # the name serve_text serves


def snapshot(folder: Path) -> tuple[int, list[tuple[str, int, str]]]:
    """The folder's mtime and each entry's name, link count and bytes (a link: its target)."""
    entries = []
    for path in sorted(folder.iterdir()):
        if path.is_symlink():
            entries.append((path.name, 1, os.readlink(path)))
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            entries.append((path.name, path.stat().st_nlink, digest))
    return folder.stat().st_mtime_ns, entries


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` read-only while the block runs; unchanged in every way afterwards."""
    before = snapshot(folder)
    folder.chmod(0o555)
    immutable = False
    if os.geteuid() == 0 and shutil.which("chattr"):
        immutable = subprocess.run(["chattr", "+i", str(folder)], check=False).returncode == 0
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)
    assert snapshot(folder) == before, "publish changed the user's model folder"


def cli(
    tmp: Path, store: ObjectStore, model: Path, *argv: str, max_file: int | None = None
) -> subprocess.Popen[str]:
    """The CLI in a fresh process; `max_file`: no file it writes may grow past this (as a full
    disk stops a copy)."""
    tmp.mkdir(exist_ok=True)

    def limits() -> None:
        assert max_file is not None
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file, max_file))

    command = [sys.executable, "-m", "infra.cli.main", "--store", store.uri, "publish", str(model)]
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [*command, "--name", MODEL, *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limits if max_file is not None else None,
    )


def publish(
    tmp: Path, store: ObjectStore, model: Path, *argv: str, max_file: int | None = None
) -> tuple[int, str, str]:
    """The CLI's exit code, stdout and stderr; its TMPDIR is left empty whatever happened."""
    process = cli(tmp, store, model, *argv, max_file=max_file)
    out, err = process.communicate(timeout=300)
    assert left_in(tmp) == [], "publish left files in its temporary folder"
    return process.returncode, out, err


def left_in(tmp: Path) -> list[str]:
    # onnxruntime (1.32) keeps a session id in TMPDIR/.ses, whoever loads a model: not ours.
    return [p.name for p in tmp.iterdir() if p.name != ".ses"]


def single_file(folder: Path, source: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copyfile(source, folder / "model.onnx")
    return folder / "model.onnx"


def external(folder: Path, source: Path, data: str = "weights.bin") -> Path:
    folder.mkdir(parents=True)
    onnx.save_model(
        onnx.load(str(source)),
        str(folder / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data,
    )
    return folder / "model.onnx"


@pytest.fixture(scope="module")
def transformer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the test transformer as one file, its tokenizer.json), outside any user folder."""
    root = tmp_path_factory.mktemp("source")
    model = hf_transformer.transformer(root / "single.onnx", d=64)
    return model, hf_transformer.tokenizer_json(root / "tokenizer.json")


@pytest.mark.parametrize("form", ["single", "external"])
@pytest.mark.parametrize("method", ["int8", "fp16"])
def test_quantize_from_a_read_only_folder(
    store: ObjectStore, transformer: tuple[Path, Path], tmp_path: Path, form: str, method: str
) -> None:
    source, _ = transformer
    model = (single_file if form == "single" else external)(tmp_path / "user", source)
    with read_only(model.parent):
        code, out, err = publish(tmp_path / "tmp", store, model, "--quantize", method)
    assert code == 0, err
    assert err == ""  # no warning either: nothing fell back for want of room
    record = Registry(store).manifest(MODEL, "1").extras["quantization"]
    assert f"{method}: {record['source_bytes']} -> {record['quantized_bytes']} bytes" in out
    assert record["size_ratio"] < (0.6 if method == "fp16" else 0.4)


def test_a_big_single_file_is_read_beside_a_private_link(tmp_path: Path) -> None:
    """The signature read writes a graph file beside a file of 64 MB or more: not the user's."""
    model = tmp_path / "user" / "model.onnx"
    write_model(model, SyntheticShape.of_bytes(70_000_000, width=128), external=False)
    assert model.stat().st_size >= 64 * 2**20
    store = LocalStore(tmp_path / "store")
    with read_only(model.parent):
        code, _, err = publish(tmp_path / "tmp", store, model)
    assert code == 0, err
    # In a read-only folder the graph file could not be made: the warning would say so.
    assert err == "", err
    assert Registry(store).manifest(MODEL, "1").file.size == model.stat().st_size


def test_tokenizer_and_quantize_from_a_read_only_folder(
    transformer: tuple[Path, Path], tmp_path: Path
) -> None:
    source, tokenizer = transformer
    model = external(tmp_path / "user", source)
    store = LocalStore(tmp_path / "store")
    argv = ("--labels", LABELS, "--tokenizer", str(tokenizer), "--quantize", "int8")
    with read_only(model.parent):
        code, _, err = publish(tmp_path / "tmp", store, model, *argv)
    assert code == 0, err
    assert [f.path for f in Registry(store).manifest(MODEL, "1").files] == [
        "model.onnx.data",
        "tokenizer.json",
        "card/card.md",  # every published version has its card
    ]


def test_an_error_names_the_users_file_not_the_private_copy(tmp_path: Path) -> None:
    model = tmp_path / "user" / "model.onnx"
    model.parent.mkdir()
    model.write_bytes(b"not a model")
    code, _, err = publish(tmp_path / "tmp", LocalStore(tmp_path / "store"), model)
    assert code == 1
    assert f"aiaas publish: error: {model} is not an ONNX model" in err
    assert "aiaas-publish-" not in err


def test_no_room_for_the_quantizers_copy_is_a_clear_error(
    transformer: tuple[Path, Path], tmp_path: Path
) -> None:
    model = external(tmp_path / "user", transformer[0])
    data = model.with_name("weights.bin").stat().st_size
    store = LocalStore(tmp_path / "store")
    with read_only(model.parent):
        argv = ("--quantize", "int8")
        code, out, err = publish(tmp_path / "tmp", store, model, *argv, max_file=data // 2)
    assert (code, out) == (1, ""), err
    assert err.startswith(f"aiaas publish: error: cannot copy {model.with_name('weights.bin')} to ")
    assert "free space there, or set TMPDIR to a folder with room" in err
    assert "Traceback" not in err
    assert list(store.list_keys("models")) == []


def test_interrupted_publish_leaves_nothing(tmp_path: Path) -> None:
    """Ctrl-C while quantizing: the private folder goes, the user's folder is as it was, and
    nothing is published."""
    model = tmp_path / "user" / "model.onnx"
    write_model(model, SyntheticShape.of_bytes(60_000_000, width=128), external=True)
    store, tmp = LocalStore(tmp_path / "store"), tmp_path / "tmp"
    with read_only(model.parent):
        process = cli(tmp, store, model, "--quantize", "int8")
        deadline = time.monotonic() + 120
        while not list(tmp.glob("aiaas-publish-*/quantized-int8")):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert left_in(tmp) == []
    assert list(store.list_keys("models")) == []


def linked_layout(kind: str, root: Path, source: Path) -> Path:
    """The user's external-data model with its data file hard-linked elsewhere too (a backup),
    or laid out as a Hugging Face cache: both files symbolic links to blobs in another folder."""
    model = external(root / "export", source)
    data = model.with_name("weights.bin")
    if kind == "hardlink":
        os.link(data, root / "backup.bin")
        return model
    blobs, snapshot_dir = root / "blobs", root / "snapshots" / "abc123"
    blobs.mkdir()
    snapshot_dir.mkdir(parents=True)
    for name, target in (("model.onnx", "0a1b"), ("weights.bin", "2c3d")):
        (model.parent / name).rename(blobs / target)
        (snapshot_dir / name).symlink_to(Path("../../blobs") / target)
    return snapshot_dir / "model.onnx"


@pytest.mark.parametrize("kind", ["hardlink", "symlink"])
@pytest.mark.parametrize(
    "options",
    [(), ("--tokenizer",), ("--quantize", "int8"), ("--quantize", "fp16"), ("--tokenizer", "fp16")],
    ids=["plain", "tokenizer", "int8", "fp16", "tokenizer-fp16"],
)
def test_linked_data_files_publish_and_serve(
    transformer: tuple[Path, Path], tmp_path: Path, kind: str, options: tuple[str, ...]
) -> None:
    source, tokenizer = transformer
    model = linked_layout(kind, tmp_path / "user", source)
    argv = ["--labels", LABELS]
    if "--tokenizer" in options:
        argv += ["--tokenizer", str(tokenizer)]
    if "--quantize" in options or "fp16" in options:
        argv += ["--quantize", options[-1]]
    store = LocalStore(tmp_path / "store")
    with read_only(model.parent):
        code, out, err = publish(tmp_path / "tmp", store, model, *argv)
    assert code == 0, err
    assert out.startswith(f"published {MODEL}:1")
    served = serve_stored(store, tmp_path, tokenizer, raw_text="--tokenizer" in options)
    quantized = "--quantize" in argv
    own = stored_labels(store, tmp_path, tokenizer) if quantized else bare_labels(source, tokenizer)
    assert served == own


def serve_stored(
    store: LocalStore, tmp_path: Path, tokenizer: Path, *, raw_text: bool
) -> list[str]:
    """The labels the predict handler gives TEXTS (as raw text or as the tokenizer's ids)."""
    if raw_text:
        answer = serve_text(store, tmp_path / "cache", TEXTS)
        return [row["label"] for row in answer["predictions"]]
    from functions.runtime.cache import ArtifactCache
    from functions.runtime.codecs import simple
    from functions.runtime.pool import ModelPool

    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    served = pool.load_version(MODEL, "1")
    doc = simple.encode(served.manifest, served.predict(own_encode(tokenizer, TEXTS)))
    return [row["label"] for row in doc["predictions"]]


def bare_labels(model: Path, tokenizer: Path) -> list[str]:
    """onnxruntime alone on the model as first exported (one file, no aiaas code)."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    logits = np.asarray(session.run(None, own_encode(tokenizer, TEXTS))[0])
    return [hf_transformer.LABELS[i] for i in logits.argmax(axis=1)]


def stored_labels(store: LocalStore, tmp_path: Path, tokenizer: Path) -> list[str]:
    """onnxruntime alone on the stored variant's files."""
    folder = tmp_path / "stored"
    folder.mkdir(parents=True)
    manifest = Registry(store).manifest(MODEL, "1")
    prefix = f"models/{MODEL}/versions/1"
    for rel in ("model.onnx", *(f.path for f in manifest.files)):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)  # card/
        (folder / rel).write_bytes(store.get_bytes(f"{prefix}/{rel}"))
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = np.asarray(session.run(None, own_encode(tokenizer, TEXTS))[0])
    return [hf_transformer.LABELS[i] for i in logits.argmax(axis=1)]
