"""An alias's resolution checks each version's manifest against the digest its record holds
(functions/runtime/manifest_pins.py), on the directory store and on S3 (moto): an edited main
version's manifest refuses the alias (a 503), an edited canary's leaves its share to the main
version (`problem`), an edited shadow's is not replayed (`shadow_problem`); a pinned version
and a bare name without the alias are read as before (not covered: docs/registry.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.runtime.errors import IntegrityError
from functions.runtime.manifest_pins import PINS, manifest_digest
from functions.runtime.refs import alias_key, manifest_key, parse_ref
from functions.runtime.registry import Registry
from functions.runtime.store import ObjectStore
from tests.publishing import publish_linear

MODEL = "pinned"
ALIAS_503 = f"model {MODEL}:{{}} failed its integrity check (its manifest.json is not the one alias"


@pytest.fixture
def registry(store: ObjectStore, tmp_path: Path) -> Registry:
    registry = Registry(store)
    for version in ("1", "2", "3"):
        publish_linear(registry, tmp_path, MODEL, version, seed=int(version))
    registry.set_alias(MODEL, "production", "1")
    registry.set_alias(MODEL, "production", "2", weight=0.2)
    registry.set_shadow(MODEL, "production", "3", 0.5)
    return registry


def swap_labels(store: ObjectStore, version: str) -> None:
    key = manifest_key(MODEL, version)
    doc = json.loads(store.get_bytes(key))
    doc["labels"] = doc["labels"][::-1]
    store.put_bytes(key, json.dumps(doc).encode())


def test_the_record_pins_each_version_it_sends_requests_to(registry: Registry) -> None:
    record = registry.alias_record(MODEL, "production")
    assert record is not None
    stored = {v: registry.store.get_bytes(manifest_key(MODEL, v)) for v in ("1", "2", "3")}
    assert record[PINS] == {v: manifest_digest(raw) for v, raw in stored.items()}
    assert [entry[PINS] for entry in record["history"]] == [
        {"1": record[PINS]["1"], "2": record[PINS]["2"]},
        {"1": record[PINS]["1"]},
    ]


def test_an_edited_main_version_refuses_the_alias(registry: Registry) -> None:
    swap_labels(registry.store, "1")
    for resolve in (registry.resolve_split, registry.resolve):
        with pytest.raises(IntegrityError) as refused:
            resolve(parse_ref(f"{MODEL}@production"))
        assert refused.value.public_message.startswith(ALIAS_503.format("1"))
        assert refused.value.status == 503
    assert registry.resolve(f"{MODEL}:1").labels == ("c", "b", "a")  # pinned: not covered


def test_an_edited_canary_or_shadow_is_left_out_the_main_version_serves(
    registry: Registry,
) -> None:
    swap_labels(registry.store, "2")
    swap_labels(registry.store, "3")
    found = registry.resolve_split(parse_ref(f"{MODEL}@production"))
    assert (found.manifest.version, found.canary, found.shadow) == ("1", None, None)
    for said in (found.problem, found.shadow_problem):
        assert said is not None and "is not the sha256 recorded when production was moved" in said


def test_a_record_without_pins_and_a_bare_name_without_the_alias_read_as_before(
    registry: Registry,
) -> None:
    swap_labels(registry.store, "1")
    registry.store.put_bytes(alias_key(MODEL, "production"), json.dumps({"version": "1"}).encode())
    assert registry.resolve(f"{MODEL}@production").labels == ("c", "b", "a")
    registry.store.delete(alias_key(MODEL, "production"))
    assert registry.resolve(MODEL).version == "3"  # the newest: no alias names it
