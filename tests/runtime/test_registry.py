"""The registry on both stores: publish, list, resolve, aliases, immutability, bad names."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from functools import partial
from http import HTTPStatus
from pathlib import Path

import pytest

from functions.runtime.cache import ArtifactCache, sha256_file
from functions.runtime.errors import (
    AiaasError,
    BadRequest,
    Conflict,
    InvalidName,
    ModelNotFound,
    NotFound,
    VersionExists,
)
from functions.runtime.manifest import ModelManifest
from functions.runtime.registry import ModelRef, Registry, manifest_key, model_key
from tests import onnx_factory
from tests.publishing import publish_linear


def test_publish_then_read_back(registry: Registry, tmp_path: Path) -> None:
    published = publish_linear(registry, tmp_path, "iris", "1")
    assert registry.models() == ["iris"]
    assert registry.versions("iris") == ["1"]
    assert registry.manifest("iris", "1") == published
    stored = registry.store.get_bytes(model_key("iris", "1"))
    assert len(stored) == published.file.size
    assert ModelManifest.from_json(registry.store.get_bytes(manifest_key("iris", "1"))) == published


def test_versions_sort_numerically_and_default_is_newest(
    registry: Registry, tmp_path: Path
) -> None:
    for version in ("2", "10", "9"):
        publish_linear(registry, tmp_path, "m", version)
    assert registry.versions("m") == ["2", "9", "10"]
    assert registry.next_version("m") == "11"
    assert registry.resolve("m").version == "10"
    assert registry.resolve(ModelRef("m")).version == "10"


def test_named_versions_are_never_the_default_while_a_number_exists(
    registry: Registry, tmp_path: Path
) -> None:
    # docs/registry.md's "Versions" rule: a CI build published after 7 does not take over `m`.
    for version in ("1.9", "1.10"):
        publish_linear(registry, tmp_path, "m", version)
    assert registry.resolve("m").version == "1.9"  # no number: the last name in text order
    assert registry.next_version("m") == "1"
    for version in ("7", "ci-903", "2024-06-01"):
        publish_linear(registry, tmp_path, "m", version)
    assert registry.versions("m") == ["1.10", "1.9", "2024-06-01", "ci-903", "7"]
    assert (registry.resolve("m").version, registry.next_version("m")) == ("7", "8")


def test_default_reference_follows_production(registry: Registry, tmp_path: Path) -> None:
    publish_linear(registry, tmp_path, "m", "1")
    publish_linear(registry, tmp_path, "m", "2")
    registry.set_alias("m", "production", "1", actor="ci")
    assert registry.resolve("m").version == "1"
    assert registry.resolve("m:2").version == "2"
    assert registry.resolve("m@production").version == "1"
    registry.delete_alias("m", "production", force=True)  # unforced: a Conflict, as the API's
    assert registry.resolve("m").version == "2"


def test_aliases_set_read_promote_and_delete(registry: Registry, tmp_path: Path) -> None:
    for version in ("1", "2"):
        publish_linear(registry, tmp_path, "m", version)
    first = registry.set_alias("m", "production", "1", actor="alice")
    assert (first["version"], first["updated_by"], first["history"]) == ("1", "alice", [])
    registry.set_alias("m", "staging", "2", actor="bob")
    promoted = registry.set_alias("m", "production", "2", actor="carol")
    assert promoted["history"][0]["version"] == "1"
    assert promoted["history"][0]["updated_by"] == "alice"
    assert registry.aliases("m") == {"production": "2", "staging": "2"}
    assert registry.alias("m", "production") == "2" and registry.alias("m", "canary") is None
    registry.delete_alias("m", "staging")
    assert registry.aliases("m") == {"production": "2"}
    # Deleted again: the 404 says who deleted it, as reading it does.
    with pytest.raises(NotFound, match="alias 'staging' of model 'm' was deleted by ") as caught:
        registry.delete_alias("m", "staging")
    assert caught.value.status == HTTPStatus.NOT_FOUND


def test_alias_must_point_at_a_published_version(registry: Registry, tmp_path: Path) -> None:
    publish_linear(registry, tmp_path, "m", "1")
    with pytest.raises(ModelNotFound, match="version '7' of model 'm' not found"):
        registry.set_alias("m", "production", "7")
    assert registry.aliases("m") == {}


def test_rollback_goes_back_along_the_alias_history(registry: Registry, tmp_path: Path) -> None:
    for version in ("1", "2", "3"):
        publish_linear(registry, tmp_path, "m", version)
    for version in ("1", "2", "2", "3"):  # promoting the current version again is no move
        registry.set_alias("m", "production", version, actor="alice")
    back = registry.rollback("m", "production", actor="bob")
    assert (back["version"], back["updated_by"]) == ("2", "bob")
    assert [h["version"] for h in back["history"]] == ["3", "2", "1"]  # nor a history entry
    # Undone within a minute only by naming the version: a plain rollback of a move back so
    # recent is a second brake on the same version (or a retry), and would put 3 back.
    with pytest.raises(Conflict, match=r"was rolled back to 2 from 3 by bob \d+ s ago"):
        registry.rollback("m", "production")
    assert registry.rollback("m", "production", to="3")["version"] == "3"  # undone on purpose
    assert registry.rollback("m", "production", to="1")["version"] == "1"
    assert registry.alias("m", "production") == "1"


@pytest.mark.parametrize(
    ("alias", "to", "error", "message"),
    [
        ("staging", None, Conflict, "alias 'staging' of model 'm' has pointed only at version "
         "'2'; there is nothing to roll back to"),
        ("production", "3", Conflict, "alias 'production' of model 'm' never pointed at version "
         "'3' (it pointed at 1); to move it to a new version, promote that version"),
        ("production", "../1", InvalidName, "invalid version '../1'"),
        ("canary", None, NotFound, "alias 'canary' of model 'm' not found"),
    ],
)  # fmt: skip
def test_rollback_errors_name_what_to_do(
    registry: Registry,
    tmp_path: Path,
    alias: str,
    to: str | None,
    error: type[AiaasError],
    message: str,
) -> None:
    for version in ("1", "2", "3"):
        publish_linear(registry, tmp_path, "m", version)
    registry.set_alias("m", "production", "1")
    registry.set_alias("m", "production", "2")
    registry.set_alias("m", "staging", "2")
    registry.set_alias("m", "staging", "2")
    with pytest.raises(error) as caught:
        registry.rollback("m", alias, to=to)
    assert caught.value.message.startswith(message), caught.value.message
    assert registry.aliases("m") == {"production": "2", "staging": "2"}  # nothing moved


def test_rollback_to_where_the_alias_is_leaves_it_unchanged(
    registry: Registry, tmp_path: Path
) -> None:
    """As a promote to the version an alias holds: no error, nothing written (it was a 409)."""
    for version in ("1", "2"):
        publish_linear(registry, tmp_path, "m", version)
    registry.set_alias("m", "production", "1")
    before = registry.set_alias("m", "production", "2")
    after = registry.rollback("m", "production", to="2")
    assert after["version"] == "2" and after["history"] == before["history"]
    assert registry.aliases("m") == {"production": "2"}


def test_rollback_of_an_unknown_model_says_so(registry: Registry) -> None:
    with pytest.raises(ModelNotFound, match="model 'ghost' not found"):
        registry.rollback("ghost", "production")


def test_watched_keys_are_what_a_reference_resolves_through(
    registry: Registry, tmp_path: Path
) -> None:
    publish_linear(registry, tmp_path, "m", "1")
    assert registry.watched_keys(ModelRef("m", version="1")) == ()
    assert registry.watched_keys(ModelRef("m", alias="staging")) == (
        "models/m/aliases/staging.json",
    )
    registry.store.put_bytes("models/m/versions/2/model.onnx", b"being published")
    assert registry.watched_keys(ModelRef("m")) == (
        "models/m/aliases/production.json",
        "models/m/versions",
        "models/m/versions/2/manifest.json",
    )


UNKNOWN_REFS = [
    ("ghost", "model 'ghost' not found"),
    ("m:9", "version '9' of model 'm' not found"),
    (
        "m@canary",
        "alias 'canary' of model 'm' not found; point it at a version with "
        "`aiaas promote m VERSION --alias canary`",
    ),
]


def test_unknown_references_are_not_found(registry: Registry, tmp_path: Path) -> None:
    publish_linear(registry, tmp_path, "m", "1")
    for ref, message in UNKNOWN_REFS:
        with pytest.raises(ModelNotFound) as caught:
            registry.resolve(ref)
        assert caught.value.status == HTTPStatus.NOT_FOUND and caught.value.message == message


def test_publishing_a_version_twice_fails_and_keeps_the_first(
    registry: Registry, tmp_path: Path
) -> None:
    first = publish_linear(registry, tmp_path, "m", "1", seed=1)
    with pytest.raises(VersionExists, match="m:1 is already published") as caught:
        publish_linear(registry, tmp_path, "m", "1", seed=2)
    assert caught.value.status == HTTPStatus.CONFLICT
    assert registry.manifest("m", "1") == first
    fetched = ArtifactCache(registry.store, tmp_path / "cache").fetch(first)
    assert sha256_file(fetched) == first.file.sha256


@pytest.mark.parametrize("same_file", [True, False], ids=["same-file", "different-files"])
def test_concurrent_publishes_of_one_version_have_one_winner_or_are_one(
    registry: Registry, tmp_path: Path, same_file: bool
) -> None:
    publishers = 4
    paths = [
        onnx_factory.linear_classifier(tmp_path / f"p{i}.onnx", seed=0 if same_file else i)
        for i in range(publishers)
    ]
    manifests = [onnx_factory.manifest_for(p, "race", "1", labels=("a", "b", "c")) for p in paths]
    barrier = threading.Barrier(publishers)
    won: list[int] = []
    lost: list[AiaasError] = []

    def publish(i: int) -> None:
        barrier.wait()
        try:
            registry.publish(manifests[i], paths[i])
            won.append(i)
        except VersionExists as exc:
            lost.append(exc)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(publishers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The same file in the same second too: each publish writes its own publish_id, so only a
    # publish whose own write's answer was lost meets its own manifest (S3's 412,
    # tests/runtime/test_lost_write_answers.py); a twin loses, and `aiaas publish` then says
    # "already published" (--version) or takes the next number (tests/infra/test_cli_publish_race.py).
    assert len(won) == 1 and len(lost) == publishers - 1
    assert all(exc.status == HTTPStatus.CONFLICT for exc in lost)
    # The winner's version is whole: its manifest and its own model file, servable.
    winner = manifests[won[0]]
    assert dataclasses.replace(registry.manifest("race", "1"), publish_id="") == winner
    assert sha256_file(ArtifactCache(registry.store, tmp_path / "c").fetch(winner)) == (
        sha256_file(paths[won[0]])
    )


def test_interrupted_publish_does_not_block_the_same_file_or_the_next_number(
    registry: Registry, tmp_path: Path
) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    manifest = onnx_factory.manifest_for(path, "m", "1")
    # A publisher that died after the model file and before the manifest.
    registry.store.upload_file(path, model_key("m", "1"))
    assert registry.versions("m", missing_ok=True) == []
    assert registry.next_version("m") == "2"
    published = registry.publish(manifest, path)  # retrying with the same file works
    assert dataclasses.replace(published, publish_id="") == manifest
    assert registry.manifest("m", "1") == published
    other = onnx_factory.linear_classifier(tmp_path / "other.onnx", seed=5)
    registry.store.upload_file(other, model_key("m", "3"))
    with pytest.raises(VersionExists, match="m:3"):
        registry.publish(onnx_factory.manifest_for(path, "m", "3"), path)


def test_extra_files_are_stored_beside_the_version(registry: Registry, tmp_path: Path) -> None:
    card = tmp_path / "card.md"
    card.write_text("# card\n")
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    registry.publish(onnx_factory.manifest_for(path, "m", "1"), path, {"card/card.md": card})
    assert registry.store.get_bytes("models/m/versions/1/card/card.md") == b"# card\n"
    for bad in ("../escape.md", "manifest.json", "model.onnx", "card//x"):
        with pytest.raises(BadRequest, match="invalid extra file name"):
            registry.publish(onnx_factory.manifest_for(path, "m", "2"), path, {bad: card})
    # The store's own temp names: a directory store sweeps them as a killed write's leftovers
    # (on the model's next publish) and both stores hide them from listings (pull lost them).
    for bad in (".tmp-notes.md", "card/.tmp-x/card.md"):
        with pytest.raises(BadRequest, match=r"invalid extra file name.*'\.tmp-'"):
            registry.publish(onnx_factory.manifest_for(path, "m", "2"), path, {bad: card})


BAD_NAMES = ["../x", "a/b", "%2e%2e", "x" * 65, "Iris", "", "..", "a\\b"]


def test_bad_model_names_are_refused_wherever_a_name_enters(
    registry: Registry, tmp_path: Path
) -> None:
    publish_linear(registry, tmp_path, "m", "1")
    keys_before = sorted(registry.store.list_keys("models"))
    for bad in BAD_NAMES:
        calls: list[Callable[[], object]] = [
            partial(registry.versions, bad),
            partial(registry.manifest, bad, "1"),
            partial(registry.set_alias, bad, "production", "1"),
            partial(registry.alias, bad, "production"),
            partial(registry.aliases, bad),
            partial(registry.delete_alias, bad, "production"),
            partial(registry.resolve, bad),
            partial(registry.resolve, ModelRef(bad, version="1")),
            partial(registry.next_version, bad),
        ]
        for call in calls:
            with pytest.raises(InvalidName, match="invalid model name") as caught:
                call()
            assert caught.value.status == HTTPStatus.BAD_REQUEST
        path = onnx_factory.linear_classifier(tmp_path / "bad.onnx")
        manifest = onnx_factory.manifest_for(path, "m", "9")
        with pytest.raises(InvalidName, match="invalid model name"):
            registry.publish(dataclasses.replace(manifest, name=bad), path)
    assert sorted(registry.store.list_keys("models")) == keys_before


def test_bad_versions_and_aliases_are_refused(registry: Registry, tmp_path: Path) -> None:
    publish_linear(registry, tmp_path, "m", "1")
    with pytest.raises(InvalidName, match="invalid version"):
        registry.manifest("m", "../1")
    with pytest.raises(InvalidName, match="invalid alias"):
        registry.set_alias("m", "../../x", "1")
    with pytest.raises(InvalidName, match="invalid alias"):
        registry.resolve(ModelRef("m", alias="Prod"))


def test_corrupt_alias_record_is_a_clear_error(registry: Registry, tmp_path: Path) -> None:
    publish_linear(registry, tmp_path, "m", "1")
    registry.store.put_bytes("models/m/aliases/production.json", b"{not json")
    with pytest.raises(AiaasError, match="alias 'production' of model 'm'") as caught:
        registry.resolve("m")
    assert caught.value.status == HTTPStatus.SERVICE_UNAVAILABLE


def test_models_lists_only_models_with_a_published_version(
    registry: Registry, tmp_path: Path
) -> None:
    publish_linear(registry, tmp_path, "b", "1")
    publish_linear(registry, tmp_path, "a", "1")
    registry.store.put_bytes("models/half/versions/1/model.onnx", b"not yet published")
    assert registry.models() == ["a", "b"]
    assert json.loads(registry.store.get_bytes(manifest_key("a", "1")))["name"] == "a"


def test_a_model_file_that_does_not_match_its_manifest_is_not_published(
    registry: Registry, tmp_path: Path
) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    other = onnx_factory.linear_classifier(tmp_path / "other.onnx", seed=3)
    with pytest.raises(BadRequest, match="does not match the sha256 in the manifest of m:1"):
        registry.publish(onnx_factory.manifest_for(path, "m", "1"), other)
    assert list(registry.store.list_keys("models")) == []


def test_models_skips_stray_folders_with_invalid_names(registry: Registry, tmp_path: Path) -> None:
    publish_linear(registry, tmp_path, "good", "1")
    registry.store.put_bytes("models/Bad Name/versions/1/manifest.json", b"{}")
    assert registry.models() == ["good"]
