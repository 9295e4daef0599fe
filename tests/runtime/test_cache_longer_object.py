"""A stored model or data file longer than its manifest says is refused, as a shorter or
altered one is: its first `size` bytes were read and hashed, nothing past them, so bytes
appended to an object were served (`aiaas pull` refused the same version). On both stores, to
disk and into memory, the model file and a data file."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.cache import ArtifactCache
from functions.runtime.errors import IntegrityError
from functions.runtime.manifest import MODEL_FILE
from functions.runtime.refs import version_prefix
from functions.runtime.registry import Registry
from functions.runtime.settings import TransferSettings
from functions.runtime.store import ObjectStore
from tests.infra.test_pull_full_disk import publish_external


def appended(store: ObjectStore, rel: str) -> None:
    key = f"{version_prefix('ext', '1')}/{rel}"
    store.put_bytes(key, store.get_bytes(key) + b"JUNK")


@pytest.mark.parametrize("rel", [MODEL_FILE, "model.onnx.data"])
@pytest.mark.parametrize("into", ["disk", "memory"])
def test_an_object_longer_than_its_manifest_says_is_refused(
    store: ObjectStore, tmp_path: Path, rel: str, into: str
) -> None:
    publish_external(store, tmp_path)
    manifest = Registry(store).manifest("ext", "1")
    assert [f.path for f in manifest.weight_files] == ["model.onnx.data"]
    appended(store, rel)
    # Parts of 1 MB: the data file's last part is one of several fetched in parallel.
    cache = ArtifactCache(store, tmp_path / "cache", TransferSettings(part_bytes=1 << 20))
    with pytest.raises(IntegrityError) as refused:
        cache.fetch(manifest) if into == "disk" else cache.fetch_into_memory(manifest)
    assert "goes on past byte" in refused.value.message
    assert (
        refused.value.public_message == f"model ext:1 failed its integrity check (its {rel} is "
        "not the file its manifest lists) and is not served"
    )
