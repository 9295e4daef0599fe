"""SIGTERM (a CI runner's timeout) after `aiaas publish` sent the version's card and before its
manifest leaves nothing of the version, on both stores: the card went too.

Only the model (and its weights) were removed: card/card.md stayed under a version with no
manifest, so the version's folder held a file, the next unnamed publish took version 2 (the
number used up, contrary to docs/cli.md's exit 130), and prune kept the folder 6 hours as "a
publish running?" (hunt_journey7 5).

The real CLI in this process, the real signal and its real handler: SIGTERM is sent to this
process right after the store made the card visible.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectStore
from infra.cli.main import main
from tests import onnx_factory

pytestmark = pytest.mark.usefixtures("stop_signals_as_in_a_terminal")


@pytest.fixture(params=["directory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "s3":
        return S3Store(request.getfixturevalue("s3_bucket"), "registry")
    return LocalStore(tmp_path / "store")


def test_sigterm_after_the_card_went_up_leaves_no_file_and_no_number_used(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kind = type(store)
    made_visible = kind._publish  # type: ignore[attr-defined]

    def then_sigterm(self: Any, src: Path, key: str, expect: str | None) -> str:
        written: str = made_visible(self, src, key, expect)
        if key.endswith("card/card.md"):
            os.kill(os.getpid(), signal.SIGTERM)  # taken at the next bytecode: here
        return written

    monkeypatch.setattr(kind, "_publish", then_sigterm)
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    argv = ["--store", store.uri, "publish", str(model), "--name", "m", "--no-progress"]
    assert main(argv) == 128 + signal.SIGTERM
    left = [key for key in store.list_keys("models/m") if "/.tmp" not in key]
    assert left == []  # not models/m/versions/1/card/card.md
    monkeypatch.setattr(kind, "_publish", made_visible)
    assert main(argv) == 0
    assert store.exists("models/m/versions/1/manifest.json")  # 1, not 2
    assert not store.exists("models/m/versions/2/manifest.json")


def test_sigterm_while_a_twin_card_wins_the_write_keeps_the_twin_card(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stop lands while the card's conditional write waits on the store, and that write
    loses: a twin wrote its card first. The card is the twin's, not this run's to remove; it was
    left in this run's list (rev13 3) and its cleanup deleted it."""
    kind = type(store)
    made_visible = kind._publish  # type: ignore[attr-defined]
    card = "models/m/versions/1/card/card.md"

    def twin_first(self: Any, src: Path, key: str, expect: str | None) -> str:
        if key == card:
            store.put_bytes(card, b"the twin's card", if_absent=True)  # its write lands first
            os.kill(os.getpid(), signal.SIGTERM)  # while ours is on its way
        written: str = made_visible(self, src, key, expect)
        return written

    monkeypatch.setattr(kind, "_publish", twin_first)
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    argv = ["--store", store.uri, "publish", str(model), "--name", "m", "--version", "1"]
    assert main(argv) == 128 + signal.SIGTERM
    assert store.get_bytes(card) == b"the twin's card"  # was deleted
    assert not store.exists("models/m/versions/1/model.onnx")  # ours: removed
