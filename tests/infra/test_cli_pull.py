"""`aiaas pull`: a version copied between a directory store and S3 (moto's server on
loopback), verified like every file of a version; a corrupted source is refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from functions.runtime.cache import ArtifactCache, sha256_file
from functions.runtime.manifest import ArtifactFile
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectStore
from infra.cli import row_progress
from infra.cli.row_progress import BYTES
from tests import onnx_factory
from tests.infra.test_cli_registry import fails, run
from tests.publishing import flip_stored_model_byte


@pytest.mark.parametrize(("source_kind", "target_kind"), [("s3", "local"), ("local", "s3")])
def test_pull_copies_a_version_between_stores(
    capsys: pytest.CaptureFixture[str],
    local_store: LocalStore,
    s3_store: S3Store,
    tmp_path: Path,
    source_kind: str,
    target_kind: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stores: dict[str, ObjectStore] = {"local": local_store, "s3": s3_store}
    source, target = stores[source_kind], stores[target_kind]
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    assert run(capsys, source, "publish", str(path), "--name", "m", "--alias", "production")[0] == 0
    source.put_bytes("models/m/versions/1/card/notes.md", b"# m\n")
    monkeypatch.setattr(row_progress, "SHOW_AFTER_S", 0.0)  # as if a big model's pull
    code, out, err = run(capsys, target, "pull", "m@production", "--from", source.uri)
    assert code == 0
    assert out == (f"pulled m:1 from {source.uri} into {target.uri}\nm@production -> 1\n")
    # On stderr, the bytes received (every file of the version), then those sent.
    received, sent = (line for line in err.splitlines() if "(100%)" in line)
    size = sum(source.head(key).size for key in source.list_keys("models/m/versions/1"))
    assert received.startswith(f"m:1: {BYTES.count(size)} of {BYTES.count(size)} received (100%)")
    assert " sent (100%), " in sent
    pulled = Registry(target)
    # The same version, and a file set beside it by hand (unlisted in the source) is now
    # listed with its sha256: the target's copy is verified like every file of a version.
    copied = pulled.resolve("m@production")
    card = Registry(source).resolve("m:1").files  # publish's card, listed
    assert replace(copied, files=()) == replace(Registry(source).resolve("m:1"), files=())
    assert copied.files == (*card, ArtifactFile("card/notes.md", 4, copied.files[-1].sha256,
                                                "extra"))  # fmt: skip
    assert target.get_bytes("models/m/versions/1/card/notes.md") == b"# m\n"
    assert sha256_file(
        ArtifactCache(target, tmp_path / "c").fetch(pulled.resolve("m"))
    ) == sha256_file(path)
    code, out, _ = run(capsys, target, "pull", "m", "--from", source.uri, "--alias", "staging")
    assert out == f"m:1 is already in {target.uri}\nm@staging -> 1\n"


def test_pull_refuses_a_corrupted_source(
    capsys: pytest.CaptureFixture[str], local_store: LocalStore, s3_store: S3Store, tmp_path: Path
) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    assert run(capsys, s3_store, "publish", str(path), "--name", "m")[0] == 0
    flip_stored_model_byte(s3_store, "m", "1")
    err = fails(capsys, local_store, "pull", "m:1", "--from", s3_store.uri)
    assert err.endswith(f"m:1 in {s3_store.uri} fails its sha256 check; not copied")
    assert list(local_store.list_keys("models")) == []
