"""An image user's PNG or JPEG file given where aiaas reads rows: `aiaas batch MODEL cat.png`
was told to "name the file with one of .csv, .jsonl, ...", which renaming cannot do, and
`aiaas explain MODEL --inputs @cat.png` said only "not UTF-8 text (byte 1)". Both now say it is
an encoded image and how to decode it into pixel values, as `explain --file cat.png` and the
predict API already did."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_image_fixed_batch import fixed_batch_cnn

PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
JPEG = b"\xff\xd8\xff\xe0" + bytes(64)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("image-files")
    store = LocalStore(root / "store")
    path = fixed_batch_cnn(root / "cnn.onnx", batch="N")
    assert main(["--store", store.uri, "publish", str(path), "--name", "cnn"]) == 0
    (root / "cat.png").write_bytes(PNG)
    (root / "cat.JPG").write_bytes(JPEG)
    return root


@pytest.mark.parametrize(("name", "suffix"), [("cat.png", ".png"), ("cat.JPG", ".jpg")])
def test_batch_of_an_image_file_says_to_decode_it_not_to_rename_it(
    root: Path, capsys: pytest.CaptureFixture[str], name: str, suffix: str
) -> None:
    store = LocalStore(root / "store")
    capsys.readouterr()
    assert main(["--store", store.uri, "batch", "cnn", str(root / name)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"aiaas batch: error: batch/cnn/input/{name}: unsupported input format {suffix!r}; "
        "batch reads .csv, .jsonl, .ndjson, .npy, .csv.gz, .jsonl.gz, .ndjson.gz, and an image "
        "file is no rows: decode the images into an array as the model takes them and save "
        "that as .npy (numpy and Pillow: np.save('cat.npy', np.stack([np.asarray("
        "PIL.Image.open(f)) for f in files])))\n"
    )
    assert not store.exists(f"batch/cnn/input/{name}")  # refused before it was uploaded


@pytest.mark.parametrize(("name", "kind"), [("cat.png", "a PNG"), ("cat.JPG", "a JPEG")])
def test_explain_inputs_of_an_image_file_says_it_is_one(
    root: Path, capsys: pytest.CaptureFixture[str], name: str, kind: str
) -> None:
    store = LocalStore(root / "store")
    capsys.readouterr()
    path = root / name
    assert main(["--store", store.uri, "explain", "cnn", "--inputs", f"@{path}"]) == 1
    assert capsys.readouterr().err == (
        f"aiaas explain: error: --inputs @{path} is {kind} image; models take pixel values as "
        "JSON (nested lists of numbers, or OIP tensors), not an encoded image: decode it first "
        "(numpy.asarray(PIL.Image.open(file)))\n"
    )
