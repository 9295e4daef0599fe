"""A corrupt registry record is that model's problem only, and can be repaired in place.

Through the control plane's real app on both stores: a corrupt alias, a corrupt manifest and a
foreign file each show up as a named problem (or a 503 for the one thing that cannot be read),
while every other model, version and alias keeps answering; promote and delete overwrite a
corrupt alias.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.errors import CorruptRecord
from functions.runtime.registry import Registry, alias_key, manifest_key
from functions.runtime.store import ObjectStore
from tests import onnx_factory


@pytest.fixture
def broken(store: ObjectStore, classifier_onnx: Path) -> tuple[TestClient, Registry]:
    registry = Registry(store)
    for name in ("iris", "other"):
        for version in ("1", "2"):
            registry.publish(
                onnx_factory.manifest_for(classifier_onnx, name, version), classifier_onnx
            )
        registry.set_alias(name, "production", "1", actor="ci")
    store.put_bytes(alias_key("iris", "production"), b"[1,2")
    store.put_bytes(manifest_key("iris", "2"), b'{"name": "iris", bad')
    store.put_bytes("models/iris/aliases/notes.txt", b"hello")
    return TestClient(create_app(store)), registry


def test_listing_names_the_problems_and_keeps_every_model(broken) -> None:
    client, _ = broken
    answer = client.get("/control/models")
    assert answer.status_code == 200
    models = {m["name"]: m for m in answer.json()["models"]}
    assert models["other"]["aliases"] == {"production": "1"} and models["other"]["problems"] == []
    assert models["iris"]["aliases"] == {}
    assert models["iris"]["problems"] == [
        "models/iris/aliases/notes.txt: not an alias record (ignored)",
        "alias 'production' of model 'iris' has a corrupt record: Expecting ',' delimiter: line 1 column 5 (char 4)",
    ]
    detail = client.get("/control/models/iris")
    assert (detail.status_code, detail.json()["versions"]) == (200, ["1", "2"])


def test_a_corrupt_manifest_is_a_503_for_that_version_only(broken) -> None:
    client, registry = broken
    answer = client.get("/control/models/iris/versions/2")
    assert (answer.status_code, answer.json()) == (
        503,
        {"error": "model iris:2 has a corrupt manifest in the registry"},
    )
    assert client.get("/control/models/iris/versions/1").status_code == 200
    with pytest.raises(CorruptRecord, match="version '2' of model 'iris' has a corrupt manifest"):
        registry.manifest("iris", "2")


def test_a_corrupt_alias_is_a_503_and_can_be_overwritten_or_deleted(broken) -> None:
    client, registry = broken
    answer = client.get("/control/models/iris/aliases/production")
    assert (answer.status_code, answer.json()) == (
        503,
        {
            "error": "alias 'production' of model 'iris' has a corrupt record in the registry; "
            "a promote replaces it (`aiaas promote iris VERSION --alias production`, or PUT "
            "/control/models/iris/aliases/production)"
        },
    )
    promoted = client.put("/control/models/iris/aliases/production", json={"version": "1"})
    assert (promoted.status_code, promoted.json()["version"]) == (200, "1")
    assert registry.alias("iris", "production") == "1"
    registry.store.put_bytes(alias_key("iris", "production"), b"{")
    assert client.delete("/control/models/iris/aliases/production?force=true").status_code == 200
    assert registry.alias("iris", "production") is None


def test_a_stray_folder_among_versions_is_ignored(
    store: ObjectStore, classifier_onnx: Path
) -> None:
    registry = Registry(store)
    registry.publish(onnx_factory.manifest_for(classifier_onnx, "iris", "1"), classifier_onnx)
    store.put_bytes("models/iris/versions/notes/readme.txt", b"left by hand")
    assert registry.versions("iris") == ["1"]
    assert registry.next_version("iris") == "2"
    published = registry.publish(
        onnx_factory.manifest_for(classifier_onnx, "iris", registry.next_version("iris")),
        classifier_onnx,
    )
    assert (published.version, registry.versions("iris")) == ("2", ["1", "2"])


def test_a_broken_store_is_a_503_in_the_error_shape(tmp_path: Path) -> None:
    from functions.runtime.store import LocalStore

    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "models").write_bytes(b"a file where a folder should be")
    client = TestClient(create_app(LocalStore(tmp_path / "store")))
    answer = client.put("/control/models/iris/aliases/production", json={"version": "1"})
    assert answer.status_code == 503
    assert list(answer.json()) == ["error"]
