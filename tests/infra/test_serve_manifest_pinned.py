"""`aiaas serve` over HTTP with a published version's manifest.json edited in the store.

Before: a server started after the edit (a restart) served the alias as the edited manifest
said, its class labels swapped, with a 200. Now it answers 503 naming the version and the file
(manifest_pins.py), as the Lambda handler does (tests/functions/test_manifest_pinned.py); a
server that loaded the version before the edit serves on what it verified, the labels as
published; and a promote that moves the alias back onto the published state reads as usual.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from functions.runtime.refs import manifest_key
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.infra.test_serve import ServeProcess, start_serve
from tests.publishing import publish_linear

MODEL = "iris"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [-3.0, 1.0, 0.5, 4.0]]
ENV = {"AIAAS_ALIAS_TTL": "0.2"}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    registry = Registry(LocalStore(tmp_path / "store"))
    publish_linear(registry, tmp_path, MODEL, "1", seed=4, labels=("a", "b", "c"))
    registry.set_alias(MODEL, "production", "1", actor="ci")
    return tmp_path / "store"


def served(store: Path) -> Iterator[ServeProcess]:
    return start_serve(store, env=ENV)


def predict(server: ServeProcess) -> httpx.Response:
    return httpx.post(f"{server.base}/models/{MODEL}/predict", json={"inputs": ROWS}, timeout=30)


def swap_labels(store: Path) -> None:
    """The published manifest with its labels reversed, written over it in the store."""
    key = manifest_key(MODEL, "1")
    doc = json.loads(LocalStore(store).get_bytes(key))
    doc["labels"] = doc["labels"][::-1]
    LocalStore(store).put_bytes(key, json.dumps(doc, indent=2).encode())


def test_a_restarted_server_refuses_the_edited_manifest_a_running_one_serves_on(
    store: Path,
) -> None:
    running = served(store)
    warm = next(running)
    try:
        before = predict(warm)
        assert before.status_code == 200, before.text
        labels = [p["label"] for p in before.json()["predictions"]]
        swap_labels(store)
        restarted = served(store)
        fresh = next(restarted)
        try:
            answer = predict(fresh)
            # Before the fix: 200, each label replaced by its mirror (a <-> c).
            assert answer.status_code == 503, (answer.text, labels)
            assert answer.json() == {
                "error": f"model {MODEL}:1 failed its integrity check (its manifest.json is not "
                "the one alias 'production' was moved onto) and is not served"
            }
            ready = httpx.get(f"{fresh.base}/v2/models/{MODEL}/ready", timeout=30)
            assert (ready.status_code, ready.json()["ready"]) == (503, False)
            log = fresh.output()
            assert "is not the sha256 recorded when production was moved onto it" in log, log
        finally:
            restarted.close()
        again = predict(warm)  # past its alias TTL: its refresh fails, what it verified serves
        assert again.status_code == 200, again.text
        assert [p["label"] for p in again.json()["predictions"]] == labels
    finally:
        running.close()


def test_the_published_manifest_put_back_is_served_as_published_after_a_pinned_call(
    store: Path,
) -> None:
    """The 503's advice followed: the published manifest.json put back in the store (a
    versioned bucket's old object copied over the edit). A request pinning the version while
    it was edited loaded it as the edit said (pinned calls are not covered by the alias's
    record); before, the alias then served that loaded copy, its labels swapped, with a 200,
    once its record's digest matched again: until a restart. Now the alias serves the version
    as the manifest it just read and checked says."""
    key = manifest_key(MODEL, "1")
    published = LocalStore(store).get_bytes(key)
    swap_labels(store)
    running = served(store)
    server = next(running)
    try:
        assert predict(server).status_code == 503  # the alias: the edit refused
        pinned = httpx.post(
            f"{server.base}/models/{MODEL}/versions/1/predict", json={"inputs": ROWS}, timeout=30
        )
        assert pinned.status_code == 200, pinned.text  # not covered (docs/registry.md)
        swapped = [p["label"] for p in pinned.json()["predictions"]]
        LocalStore(store).put_bytes(key, published)  # put back, as the 503's log line says
        answer = predict(server)
        assert answer.status_code == 200, answer.text
        labels = [p["label"] for p in answer.json()["predictions"]]
        mirror = {"a": "c", "b": "b", "c": "a"}
        # Before the fix: `swapped`, the edit's labels, from the copy the pinned call loaded.
        assert labels == [mirror[label] for label in swapped], (labels, swapped)
        again = httpx.post(
            f"{server.base}/models/{MODEL}/versions/1/predict", json={"inputs": ROWS}, timeout=30
        )
        assert [p["label"] for p in again.json()["predictions"]] == labels
    finally:
        running.close()
