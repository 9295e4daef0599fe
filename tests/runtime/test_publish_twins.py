"""Two publishes of one version with the same model.onnx and other cards ("twins": a CI job
re-run while the first still runs): one wins, and the loser never replaces a file that the
winner's manifest vouches for. An interrupted publish's leftovers are still replaced by a retry.

Runs on both stores (a directory and S3 on moto's server), like the rest of the registry tests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest

from functions.runtime.errors import VersionExists
from functions.runtime.publishing import publish_version
from functions.runtime.registry import Registry
from tests import onnx_factory

CARD = "models/m/versions/1/card/card.md"


def stored_files_match(registry: Registry, name: str, version: str) -> None:
    manifest = registry.manifest(name, version)
    for item in manifest.files:
        data = registry.store.get_bytes(f"models/{name}/versions/{version}/{item.path}")
        assert hashlib.sha256(data).hexdigest() == item.sha256, item.path


def test_a_twin_that_loses_leaves_the_winners_card_as_its_manifest_says(
    registry: Registry, tmp_path: Path
) -> None:
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    cards = []
    for who in ("first", "second"):
        cards.append(tmp_path / f"{who}.md")
        cards[-1].write_text(f"# card of the {who} run\n")
    winner = onnx_factory.manifest_for(model, "m", "1")

    def the_other_run_finishes_now(_: int) -> None:
        if not registry.store.exists("models/m/versions/1/manifest.json"):
            registry.publish(winner, model, {"card/card.md": cards[0]})

    # The loser has found the version free and is sending its files when the winner, with the
    # same model.onnx and another card, publishes whole.
    with pytest.raises(VersionExists, match="being published by another run"):
        registry.publish(
            onnx_factory.manifest_for(model, "m", "1"),
            model,
            {"card/card.md": cards[1]},
            progress=the_other_run_finishes_now,
        )
    assert registry.store.get_bytes(CARD) == b"# card of the first run\n"
    stored_files_match(registry, "m", "1")


def test_a_twin_with_the_same_files_in_the_same_second_loses(
    registry: Registry, tmp_path: Path
) -> None:
    """Two publishes of one manifest (the same file, the same second: its `created_at` too)
    wrote byte-identical manifests, and the loser took the winner's for its own retried write:
    both said published, and a numbered publish (no --version) reported a number another run
    reported too. Each publish now writes its own publish_id, so the loser loses."""
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    manifest = onnx_factory.manifest_for(model, "m", "1")
    won = []

    def the_twin_finishes_now(_: int) -> None:
        if not won:
            won.append(registry.publish(manifest, model))

    with pytest.raises(VersionExists, match="m:1 was published concurrently"):
        registry.publish(manifest, model, progress=the_twin_finishes_now)
    stored = registry.manifest("m", "1")
    assert stored == won[0] and len(stored.publish_id) == 32
    assert registry.versions("m") == ["1"]


def test_two_copies_of_one_published_version_agree(registry: Registry, tmp_path: Path) -> None:
    """Two pulls of one version at once: a copy keeps its source's publish_id, so both write
    the same manifest and both are done (the version is the same publish, copied)."""
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    source = dataclasses.replace(onnx_factory.manifest_for(model, "m", "1"), publish_id="a" * 32)
    copies = []

    def the_other_pull_finishes_now(_: int) -> None:
        if not copies:
            copies.append(publish_version(registry.store, source, model, {}, copied=True))

    copies.append(
        publish_version(registry.store, source, model, {}, the_other_pull_finishes_now, copied=True)
    )
    assert copies[0] == copies[1] == registry.manifest("m", "1") == source


def test_a_retry_replaces_what_an_interrupted_publish_left(
    registry: Registry, tmp_path: Path
) -> None:
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    card = tmp_path / "card.md"
    card.write_text("# the retry's card\n")
    # A publisher killed after committing the model and its card, before the manifest.
    registry.store.upload_file(model, "models/m/versions/1/model.onnx")
    registry.store.put_bytes(CARD, b"# the killed run's card\n")
    registry.publish(onnx_factory.manifest_for(model, "m", "1"), model, {"card/card.md": card})
    assert registry.store.get_bytes(CARD) == b"# the retry's card\n"
    stored_files_match(registry, "m", "1")


class _PausedAfterCheck:
    """`store`, but a publish through it stops once it has found the version free (its
    manifest absent), until `resume` is set: the race's window, made certain without sleeps."""

    def __init__(self, store: object, checked: threading.Event, resume: threading.Event) -> None:
        self._store, self._checked, self._resume = store, checked, resume

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def exists(self, key: str) -> bool:
        found: bool = self._store.exists(key)  # type: ignore[attr-defined]
        if key.endswith("/manifest.json"):
            self._checked.set()
            assert self._resume.wait(30)
        return found


def test_a_twin_that_found_the_winners_card_before_its_manifest_leaves_it(
    registry: Registry, tmp_path: Path
) -> None:
    """The twin reads the card the winner has just sent and finds the version free (the
    winner's manifest not yet written); the winner then completes. The twin's card replaced
    the winner's (the card was as it had found it) and only then lost the manifest: the winner's
    manifest vouched for the loser's card. The loser now puts back what it replaced."""
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    winner_card, loser_card = tmp_path / "winner.md", tmp_path / "loser.md"
    winner_card.write_text("# card of the winning run\n")
    loser_card.write_text("# card of the losing run\n")
    checked, resume = threading.Event(), threading.Event()
    lost: list[Exception] = []

    def loser() -> None:
        paused = Registry(_PausedAfterCheck(registry.store, checked, resume))  # type: ignore[arg-type]
        try:
            paused.publish(
                onnx_factory.manifest_for(model, "m", "1"), model, {"card/card.md": loser_card}
            )
        except VersionExists as exc:
            lost.append(exc)

    twin = threading.Thread(target=loser)

    def start_the_twin_once_the_card_is_sent(_: int) -> None:
        if registry.store.exists(CARD) and not twin.is_alive() and not checked.is_set():
            twin.start()
            assert checked.wait(30)

    try:
        registry.publish(
            onnx_factory.manifest_for(model, "m", "1"),
            model,
            {"card/card.md": winner_card},
            progress=start_the_twin_once_the_card_is_sent,
        )
    finally:
        resume.set()
        twin.join(30)
    assert checked.is_set() and len(lost) == 1
    assert registry.store.get_bytes(CARD) == b"# card of the winning run\n"
    stored_files_match(registry, "m", "1")


def test_an_interrupted_publish_removes_the_files_it_wrote(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C after the model went up, before the manifest: the CLI said "interrupted, nothing
    half-published is left", and 51 MB stayed in S3 under a version that never existed, past
    what prune cleans. The files this run wrote go; the version number stays used (a retry
    takes the next one, as for a killed run)."""
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    store = registry.store
    put_bytes = store.put_bytes

    def interrupted(key: str, data: bytes, **kwargs: Any) -> None:
        if key.endswith("/manifest.json"):
            raise KeyboardInterrupt
        put_bytes(key, data, **kwargs)

    monkeypatch.setattr(store, "put_bytes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        registry.publish(onnx_factory.manifest_for(model, "m", "1"), model)
    monkeypatch.undo()
    assert not store.exists("models/m/versions/1/model.onnx")
    assert not store.exists("models/m/versions/1/manifest.json")
    registry.publish(onnx_factory.manifest_for(model, "m", "2"), model)  # the next one goes on
    assert store.exists("models/m/versions/2/model.onnx")
