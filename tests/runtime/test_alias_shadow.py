"""Shadow versions in the registry: set and removed by a compare-and-swap like any alias move,
kept in the history, refused clearly when invalid, kept across promotes (unless the alias then
serves the shadow), and named beside what the alias serves, never loaded by the caller's
process (its copies are replayed in another: functions/shadow/), so a broken one never blocks it.

Runs on both stores (a directory and S3 on moto's server), like the rest of the registry tests.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from pathlib import Path

import pytest

from functions.runtime.aliases import AliasTarget
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import ModelRef, Registry, alias_key
from functions.runtime.served import ServedModel
from tests.publishing import error_of, flip_stored_model_byte, publish_three, three_once


@pytest.fixture
def three(registry: Registry, tmp_path: Path) -> Registry:
    return publish_three(registry, tmp_path)


@pytest.fixture(scope="module", params=["local", "s3"])
def refusing(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """`three` published once per store for the 16 tests whose call is refused (~1 s of moto
    a test): a refusal writes nothing, and each checks the alias's record is as it was."""
    return three_once(request, tmp_path_factory)


def test_a_shadow_is_stored_audited_and_resolved(three: Registry) -> None:
    record = three.set_shadow("m", "production", "2", 0.2, actor="alice")
    stored = json.loads(three.store.get_bytes(alias_key("m", "production")))
    assert stored == record
    assert (record["version"], record["shadow"]) == ("1", {"version": "2", "sample": 0.2})
    assert record["updated_by"] == "alice"
    assert [h["version"] for h in record["history"]] == ["1"]
    assert three.alias("m", "production") == "1"  # readers of `version` are unaffected
    found = three.resolve_split(ModelRef("m"))
    assert found.manifest.version == "1" and found.canary is None
    assert found.shadow is not None and (found.shadow.version, found.sample) == ("2", 0.2)
    assert "shadow 2 (20% sampled)" in AliasTarget.of(record).describe()
    removed = three.set_shadow("m", "production", None, actor="bob")
    assert "shadow" not in removed and removed["history"][0]["shadow"]["version"] == "2"
    assert three.resolve_split(ModelRef("m")).shadow is None


def test_a_promote_keeps_the_shadow_unless_it_then_serves_it(three: Registry) -> None:
    three.set_shadow("m", "production", "3", 0.5)
    assert three.set_alias("m", "production", "2", weight=0.1)["shadow"]["version"] == "3"
    assert three.set_alias("m", "production", "2")["shadow"] == {"version": "3", "sample": 0.5}
    assert "shadow" not in three.set_alias("m", "production", "3")  # promoted: no longer a shadow
    # Rolled back, the promote is undone, shadow included (as a rollout's rollback does).
    assert three.rollback("m", "production")["shadow"] == {"version": "3", "sample": 0.5}


@pytest.mark.parametrize(
    ("version", "sample", "status", "words"),
    [
        ("2", 0.0, HTTPStatus.BAD_REQUEST, "sample must be at least 1e-06 and at most 1"),
        ("2", 1.5, HTTPStatus.BAD_REQUEST, "sample must be at least 1e-06 and at most 1"),
        ("2", 1e-9, HTTPStatus.BAD_REQUEST, "sample must be at least 1e-06 and at most 1"),
        ("2", float("nan"), HTTPStatus.BAD_REQUEST, "sample must be at least 1e-06"),
        ("2", True, HTTPStatus.BAD_REQUEST, "sample must be a number"),
        ("9", 0.5, HTTPStatus.NOT_FOUND, "'9'"),
        ("1", 0.5, HTTPStatus.CONFLICT, "already serves version '1'"),
        ("../x", 0.5, HTTPStatus.BAD_REQUEST, "version"),
    ],
)
def test_an_invalid_shadow_is_refused_and_changes_nothing(
    refusing: Registry, version: str, sample: float, status: HTTPStatus, words: str
) -> None:
    before = refusing.store.get_bytes(alias_key("m", "production"))
    got_status, message = error_of(refusing.set_shadow, "m", "production", version, sample)
    assert got_status == status and words in message, message
    assert refusing.store.get_bytes(alias_key("m", "production")) == before


def test_the_canary_cannot_be_the_shadow_and_a_missing_alias_has_nothing_to_shadow(
    three: Registry,
) -> None:
    three.set_alias("m", "production", "2", weight=0.1)
    assert error_of(three.set_shadow, "m", "production", "2", 0.5)[0] == HTTPStatus.CONFLICT
    status, message = error_of(three.set_shadow, "m", "staging", "2", 0.5)
    assert status == HTTPStatus.NOT_FOUND and "promote a version to it first" in message


def test_the_shadow_is_named_never_loaded_by_the_callers_process(
    three: Registry, tmp_path: Path
) -> None:
    three.set_shadow("m", "production", "2", 1.0)
    flip_stored_model_byte(three.store, "m", "2")  # would fail its checksum on load
    pool = ModelPool(three, ArtifactCache(three.store, tmp_path / "cache"))
    served = ServedModel(pool, "m@production", ttl=60)
    assert served.current().manifest.version == "1"
    assert served.shadow is not None and served.shadow[0].version == "2"
    three.set_shadow("m", "production", "3", 0.25)
    healthy = ServedModel(pool, "m@production", ttl=60)
    healthy.current()
    assert healthy.shadow is not None
    manifest, sample = healthy.shadow
    assert (manifest.version, sample) == ("3", 0.25)
    # Neither shadow was loaded here: only what answers callers is in memory and the cache.
    assert [key for key in pool._models] == [("m", "1")]
    assert len(list((tmp_path / "cache").glob("*.onnx"))) == 1
