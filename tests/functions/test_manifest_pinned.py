"""A published version's manifest.json edited in the store is not served through an alias.

Each file a manifest lists was checked against it, but the manifest itself was trusted as
read: its class labels swapped (or its inputs renamed, or a file's sha256 changed to a replaced
model's) in the store, every fresh copy (a Lambda cold start, a restart, a batch run) served as
the edit said: the swapped labels with a 200. Each alias move now records the sha256 of the
manifest of each version it sends requests to (functions/runtime/manifest_pins.py); a copy
that resolves the alias checks the bytes it read against it, once a resolution, and answers
503 naming the version and the file (its log: both digests). Tested here through the predict
handler on a golden event (a cold start: a fresh module) and the batch run; `aiaas serve` over
HTTP in tests/infra/test_serve_manifest_pinned.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.runtime.aliases import AliasTarget
from functions.runtime.batch.run import RunInput, run_object
from functions.runtime.errors import Conflict, IntegrityError
from functions.runtime.manifest_pins import manifest_digest
from functions.runtime.refs import alias_key, manifest_key
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore, ObjectStore
from infra.local.functions import load_handler
from tests import batch_support
from tests.functions.test_predict_events import MODEL, body_of, load_event, publish_digits
from tests.publishing import publish_linear

SWAPPED = [str(9 - i) for i in range(10)]  # digits-mlp's labels "0".."9", reversed


def edit_manifest(store: ObjectStore, name: str, version: str, **fields: Any) -> tuple[str, str]:
    """Rewrite `name:version`'s stored manifest.json with `fields` changed, as a hand in the
    store would: (its sha256 before, after)."""
    key = manifest_key(name, version)
    raw = store.get_bytes(key)
    doc = json.loads(raw)
    doc.update(fields)
    edited = json.dumps(doc, indent=2).encode()
    store.put_bytes(key, edited)
    return manifest_digest(raw), manifest_digest(edited)


def cold_handler(store: Path, cache: Path) -> Callable[..., Any]:
    """The predict function's handler as a fresh container imports it."""
    env = {
        "AIAAS_MODEL": MODEL,
        "AIAAS_MODEL_SELECTOR": "@production",
        "AIAAS_STORE": str(store),
        "AIAAS_CACHE_DIR": str(cache),
    }
    return load_handler("functions.predict.handler.handler", env)


@pytest.fixture
def digits(tmp_path: Path) -> Path:
    store, _ = publish_digits(tmp_path)  # published, then promoted: production -> 1
    return store


def test_a_cold_start_refuses_an_alias_whose_manifest_was_edited(
    digits: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = load_event("predict_simple")
    before = cold_handler(digits, tmp_path / "cache-before")(event, None)
    assert before["statusCode"] == 200, before["body"]
    labels = [p["label"] for p in body_of(before)["predictions"]]
    published, edited = edit_manifest(LocalStore(digits), MODEL, "1", labels=SWAPPED)
    capsys.readouterr()
    after = cold_handler(digits, tmp_path / "cache-after")(event, None)
    # Before the fix: 200, each prediction labelled with the swapped label (9 - the class).
    assert after["statusCode"] == 503, (after["body"], labels)
    assert body_of(after) == {
        "error": f"model {MODEL}:1 failed its integrity check (its manifest.json is not the "
        "one alias 'production' was moved onto) and is not served"
    }
    # The function's log lines, as Lambda writes them (stdout), or as pytest's log capture holds
    # them where an earlier test's logger setup sends them elsewhere (run beside other tests).
    logged = capsys.readouterr().out + caplog.text
    assert f"models/{MODEL}/versions/1/manifest.json: sha256 {edited}" in logged, logged
    assert f"recorded when production was moved onto it: {published}" in logged, logged


def test_a_warm_copy_serves_on_what_it_verified(digits: Path, tmp_path: Path) -> None:
    """A copy that loaded the version before the edit keeps serving it as it was (its refresh
    fails, as any broken refresh does), never the edited labels."""
    handler = cold_handler(digits, tmp_path / "cache")
    event = load_event("predict_simple")
    first = body_of(handler(event, None))
    edit_manifest(LocalStore(digits), MODEL, "1", labels=SWAPPED)
    again = handler(event, None)
    assert again["statusCode"] == 200 and body_of(again)["predictions"] == first["predictions"]


def refused_back(registry: Registry, version: str, digests: tuple[str, str]) -> str:
    published, edited = digests
    return (
        f"iris@production is not moved to version {version}: iris:{version}'s "
        f"manifest.json is not the one recorded when production was moved onto it (sha256 "
        f"{edited}, recorded {published})"
    )


def test_a_move_back_onto_an_edited_manifest_is_refused(tmp_path: Path) -> None:
    """A rollback to a version whose manifest changed since the alias served it (through its
    history, or a deleted alias restored) is refused, a 409: the record would hold the edit."""
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2"):
        publish_linear(registry, tmp_path, "iris", version, seed=int(version))
    registry.set_alias("iris", "production", "1")
    registry.set_alias("iris", "production", "2")
    key = manifest_key("iris", "1")
    published = registry.store.get_bytes(key)
    digests = edit_manifest(registry.store, "iris", "1", labels=["c", "b", "a"])
    with pytest.raises(Conflict) as refused:
        registry.rollback("iris", "production")
    assert refused.value.message.startswith(refused_back(registry, "1", digests))
    assert refused.value.status == 409 and refused.value.public_message == refused.value.message
    assert registry.alias("iris", "production") == "2"  # where it was
    registry.store.put_bytes(key, published)  # the published one put back, as the 409 says
    assert registry.rollback("iris", "production")["version"] == "1"
    registry.delete_alias("iris", "production", force=True)
    edit_manifest(registry.store, "iris", "1", labels=["c", "b", "a"])
    with pytest.raises(Conflict, match=r"is not the one recorded when production was moved"):
        registry.rollback("iris", "production")  # the deleted alias restored


def test_a_promote_from_staging_onto_an_edited_manifest_is_refused(tmp_path: Path) -> None:
    """production never pointed at the version: staging's record, which did, vouches for it."""
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2"):
        publish_linear(registry, tmp_path, "iris", version, seed=int(version))
    registry.set_alias("iris", "production", "1")
    registry.set_alias("iris", "staging", "2")  # what `publish --alias staging` does
    published, edited = edit_manifest(registry.store, "iris", "2", labels=["c", "b", "a"])
    for move in (
        lambda: registry.set_alias("iris", "production", "2"),
        lambda: registry.set_alias("iris", "production", "2", weight=0.1),
        lambda: registry.set_shadow("iris", "production", "2"),
    ):
        with pytest.raises(Conflict) as refused:
            move()
        assert refused.value.message.startswith(
            f"iris@production is not moved to version 2: iris:2's manifest.json is not the one "
            f"recorded when staging was moved onto it (sha256 {edited}, recorded {published})"
        ), refused.value.message
    record = registry.alias_record("iris", "production")
    assert record is not None and AliasTarget.of(record) == AliasTarget("1")


def test_a_record_written_before_pins_is_served_as_it_says(digits: Path, tmp_path: Path) -> None:
    """An alias record of an older release (no `manifests`) is read as before: served."""
    store = LocalStore(digits)
    key = alias_key(MODEL, "production")
    record = json.loads(store.get_bytes(key))
    assert record["manifests"] == {"1": manifest_digest(store.get_bytes(manifest_key(MODEL, "1")))}
    store.put_bytes(key, json.dumps({"version": "1"}).encode())
    answer = cold_handler(digits, tmp_path / "cache")(load_event("predict_simple"), None)
    assert answer["statusCode"] == 200, answer["body"]


def test_a_batch_run_refuses_the_edited_manifest(tmp_path: Path) -> None:
    store = batch_support.published_store(tmp_path)
    registry = Registry(store)
    registry.set_alias(batch_support.MODEL, "production", "1")
    edit_manifest(store, batch_support.MODEL, "1", labels=["virginica", "versi,color", "setosa"])
    key = f"batch/{batch_support.MODEL}/input/rows.csv"
    x = np.random.default_rng(3).normal(size=(4, 4))
    store.put_bytes(key, batch_support.features_csv(x).encode())
    obj = batch_support.parse_input_key(key)
    assert obj is not None
    run = RunInput(obj, batch_support.store_location(store)[0], store.head(key))
    pool = batch_support.pool(store, tmp_path)
    with pytest.raises(
        IntegrityError, match="is not the sha256 recorded when production was moved onto it"
    ):
        run_object(store, pool, run, batch_support.run_settings())
    assert not store.exists(f"batch/{batch_support.MODEL}/output/rows.csv")
