"""Hostile artifacts in the store: a model whose ONNX external data names a file the manifest
does not list must not load, whatever onnxruntime would let it read.

onnxruntime refuses `../` and absolute locations itself, but a plain name is read from beside
the model: from the artifact cache's folder for a model fetched to disk (other models' cached
files), from the process's working directory for a model loaded from memory (a project's
`.env`, `pyproject.toml`, Lambda's code). A graph `y = x + w` with `w` in such a file answers
the file's bytes to a predict of zeros. Publishing refuses such a model
(`artifact_files.files_to_publish`); these versions are written straight into the store, as
anyone able to write the bucket could, and served by a real `aiaas serve` over HTTP.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from functions.runtime.cache import sha256_file
from functions.runtime.manifest import ModelFile, ModelManifest, TensorSpec
from tests import onnx_factory
from tests.infra.test_serve import ROOT, ServeProcess, start_serve

WIDTH = 64  # float32 weights: 256 bytes of the named file
SECRET = b"CACHE-SECRET-" * 20


def leaky_model(path: Path, location: str) -> Path:
    """y = x + w, w's bytes read from external data file `location`."""
    return onnx_factory.external_add(path, location, WIDTH)


def write_version(store: Path, name: str, location: str) -> None:
    """Model file and a manifest vouching for it (listing no data file), written directly."""
    folder = store / "models" / name / "versions" / "1"
    model = leaky_model(folder / "model.onnx", location)
    manifest = ModelManifest(
        name=name,
        version="1",
        task="other",
        inputs=(TensorSpec("x", "float32", (-1, WIDTH)),),
        outputs=(TensorSpec("y", "float32", (-1, WIDTH)),),
        file=ModelFile(
            sha256=sha256_file(model), size=model.stat().st_size, opset=17, producer="x"
        ),
    )
    (folder / "manifest.json").write_text(json.dumps(manifest.to_dict()))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile-artifacts")
    write_version(root / "store", "beside-cache", "secret.txt")  # a file in the cache folder
    write_version(root / "store", "beside-cwd", "pyproject.toml")  # the server's cwd
    (root / "cache").mkdir()
    (root / "cache" / "secret.txt").write_bytes(SECRET)
    return root


@pytest.fixture(scope="module", params=["disk", "memory"])
def served(root: Path, request: pytest.FixtureRequest) -> Iterator[ServeProcess]:
    yield from start_serve(root / "store", env={"AIAAS_MODEL_LOAD": request.param})


@pytest.mark.parametrize(
    ("model", "leaked"),
    [("beside-cache", SECRET), ("beside-cwd", (ROOT / "pyproject.toml").read_bytes())],
)
def test_a_model_naming_an_unlisted_data_file_is_not_served(
    served: ServeProcess, model: str, leaked: bytes
) -> None:
    answer = httpx.post(
        f"{served.base}/models/{model}/predict", json={"inputs": [[0.0] * WIDTH]}, timeout=30
    )
    assert (answer.status_code, answer.json()) == (
        503,
        {"error": f"model {model}:1 cannot be loaded"},
    ), answer.text[:300]
    assert leaked[:16].decode() not in answer.text
    assert "not listed in its manifest" in served.output()  # the operator is told why
    health = httpx.get(f"{served.base}/v2/health/live", timeout=10)
    assert health.status_code == 200  # the server itself is unaffected


def test_publishing_refuses_a_model_naming_a_hidden_file_as_its_weights(tmp_path: Path) -> None:
    """A model from elsewhere naming `.env` beside it had the user's secrets uploaded to the
    registry as its weights (listed in the manifest, so served, too)."""
    from functions.runtime.errors import BadRequest
    from infra.cli.main import main

    model = leaky_model(tmp_path / "download" / "model.onnx", ".env")
    (model.parent / ".env").write_bytes(SECRET)
    store = tmp_path / "store"
    code = main(["--store", str(store), "publish", str(model), "--name", "leak"])
    assert code == 1
    assert not (store / "models" / "leak").exists()
    from functions.runtime.artifact_files import files_to_publish

    with pytest.raises(BadRequest, match=r"names a hidden file '\.env' as external data"):
        files_to_publish(model, {})


@pytest.mark.parametrize("link", ["file", "folder"])
def test_publishing_refuses_weights_that_link_out_of_the_model_folder(
    tmp_path: Path, link: str
) -> None:
    """A model from elsewhere whose `w.bin` beside it is a link (to the file, or through a linked
    folder) to the user's secrets had them uploaded to the registry as its weights."""
    from infra.cli.main import main

    secret = tmp_path / "home" / "credentials"
    secret.parent.mkdir()
    secret.write_bytes(SECRET)
    model = leaky_model(tmp_path / "download" / "model.onnx", "w.bin")
    if link == "file":
        (model.parent / "w.bin").symlink_to(secret)
    else:
        (model.parent / "sub").symlink_to(secret.parent)
        (model.parent / "w.bin").symlink_to("sub/credentials")
    store = tmp_path / "store"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["--store", str(store), "publish", str(model), "--name", "leak"])
    assert code == 1
    assert not (store / "models" / "leak").exists()
    assert err.getvalue().strip() == (
        f"aiaas publish: error: {model} names 'w.bin' as external data, a link to {secret} "
        "outside the model's folder: refused, as a model from elsewhere could link to files "
        "such as ~/.aws/credentials to have them uploaded as weights; if the weights really "
        "are there, copy them beside the model"
    )


def test_publishing_takes_weights_linked_within_the_model_folder(tmp_path: Path) -> None:
    """A link that stays inside the folder (an exporter's own layout) is the weights."""
    from functions.runtime.artifact_files import files_to_publish

    model = leaky_model(tmp_path / "export" / "model.onnx", "w.bin")
    (model.parent / "blobs").mkdir()
    (model.parent / "blobs" / "w").write_bytes(bytes(WIDTH * 4))
    (model.parent / "w.bin").symlink_to("blobs/w")
    assert files_to_publish(model, {}) == {"w.bin": (model.parent / "w.bin", "weights")}
