"""`aiaas publish --quantize` with a TMPDIR too small for the variant (a small tmpfs /tmp).
The quantizers' "[Errno 28] No space left on device" came out as "--quantize fp16 does not
apply to this model", blaming the model and naming neither TMPDIR nor the space needed; it now
names both, and nothing is published or left in TMPDIR."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.synthetic_transformer import SyntheticShape, write_model
from infra.cli.main import main
from tests import full_disk


@pytest.fixture
def small_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A 7 MB TMPDIR: room for publish's two copies of a 3 MB model, not for its variant."""
    with full_disk.small_tmpdir(tmp_path / "small-tmp", "7m", monkeypatch) as folder:
        yield folder


@pytest.mark.parametrize("method", ["fp16", "int8"])
def test_quantizing_into_a_full_tmpdir_names_tmpdir_and_the_space(
    small_tmpdir: Path, tmp_path: Path, method: str
) -> None:
    model = tmp_path / "export" / "model.onnx"  # another file system: publish copies it
    write_model(model, SyntheticShape.of_bytes(3_000_000, width=64), external=True)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--store", str(tmp_path / "store"), "publish", str(model), "--name", "q",
                     "--quantize", method, "--no-progress"])  # fmt: skip
    assert code == 1
    assert err.getvalue() == (
        f"aiaas publish: error: --quantize {method}: no space left in TMPDIR ({small_tmpdir}) "
        "writing the variant: this publish needs up to 9 MB there (its copies of the model "
        "and the variant), 7 MB is free; free space there, or set TMPDIR to a folder with more\n"
    )
    assert list(small_tmpdir.iterdir()) == []
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.onnx"))
