"""Two publishes of one version with the same model.onnx and other cards ("twins": a CI job
re-run while the first still runs): one wins, and the loser never replaces a file that the
winner's manifest vouches for. An interrupted publish's leftovers are still replaced by a retry.

Runs on both stores (a directory and S3 on moto's server), like the rest of the registry tests.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from functions.runtime.errors import VersionExists
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
