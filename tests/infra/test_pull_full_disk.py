"""`aiaas pull` when the local disk it downloads to fills up.

Pull holds the whole version in a temporary folder (TMPDIR) before publishing it into the
target store. A TMPDIR too small for a model with external data ended, pulling from S3, in
a traceback (s3transfer's bare OSError), and pulling from a directory store in "no space left
writing 'models/.../model.onnx.data' under <the source store>": the source's disk blamed,
where it is only read. The full disk is real: /dev/full, and a 1 MB tmpfs as TMPDIR (mounting
one takes root, as the read-only cache test in test_serve_store_faults does).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.synthetic_transformer import SyntheticShape, write_model
from functions.runtime.errors import StoreError
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectStore
from infra.cli.main import main
from tests import full_disk, onnx_factory

FULL = Path("/dev/full")  # every write: ENOSPC


@pytest.fixture
def small_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with full_disk.small_tmpdir(tmp_path / "small-tmp", "1m", monkeypatch) as folder:
        yield folder


def publish_external(store: ObjectStore, root: Path) -> None:
    """ext:1, a ~3 MB synthetic transformer with its weights in model.onnx.data."""
    path = root / "export" / "model.onnx"
    write_model(path, SyntheticShape.of_bytes(3_000_000, width=64), external=True)
    Registry(store).publish(onnx_factory.manifest_for(path, "ext", "1"), path)


def pull(target: Path, source: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--store", str(target), "pull", "--from", source, "ext"])
    return code, err.getvalue().strip()


def test_a_full_local_disk_is_named_not_the_store(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.put_bytes("models/m/versions/1/model.onnx.data", b"w" * 1024)
    with pytest.raises(StoreError) as raised:
        store.download_file("models/m/versions/1/model.onnx.data", FULL)
    assert raised.value.message == f"cannot write {FULL}: no space left"


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_pull_into_a_too_small_tmpdir_says_so_and_copies_nothing(
    kind: str, s3_store: S3Store, tmp_path: Path, small_tmpdir: Path
) -> None:
    source: ObjectStore = s3_store if kind == "s3" else LocalStore(tmp_path / "source")
    publish_external(source, tmp_path)
    code, err = pull(tmp_path / "target", source.uri)
    assert code == 1
    assert err.startswith(f"aiaas pull: error: cannot write {small_tmpdir}/aiaas-pull-"), err
    assert err.endswith(
        "/model.onnx.data: no space left: pull holds the version in a temporary folder "
        "(TMPDIR) until it is published; set TMPDIR to a folder with room for the whole version"
    ), err
    assert not (tmp_path / "target" / "models").exists()
    assert list(small_tmpdir.iterdir()) == []  # the partial download is gone
