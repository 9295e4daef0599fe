"""`aiaas show` of a version whose model card was changed in the store after publishing.

The manifest lists the card with its sha256 and the control plane refuses to answer a changed
one, but `aiaas show` printed the card's path as the version's own with exit 0: an auditor
reading a card whose figures were edited in the store (a precision raised) had no word of it.
Now it says so on the card's line, names the file and both digests on stderr and exits 1;
an untouched card is shown as before."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from functions.runtime.registry import version_prefix
from functions.runtime.store import ObjectStore
from tests.infra.test_cli_registry import foreign_onnx, run

CARD = f"{version_prefix('foreign', '1')}/card/card.md"


def _publish(capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path) -> bytes:
    path = foreign_onnx(tmp_path / "foreign.onnx")
    code, _, _ = run(
        capsys, store, "publish", str(path), "--name", "foreign", "--labels", "cat,dog,fish",
        "--scores-output", "probabilities", "--activation", "none",
    )  # fmt: skip
    assert code == 0
    return store.get_bytes(CARD)


def test_show_says_an_edited_card_is_not_the_published_one(
    capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path
) -> None:
    card = _publish(capsys, store, tmp_path)
    code, out, err = run(capsys, store, "show", "foreign:1")
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == f"  card:      {store.uri.rstrip('/')}/{CARD}"

    store.put_bytes(CARD, card.replace(b"foreign", b"f0reign", 1))  # one byte, same size
    code, out, err = run(capsys, store, "show", "foreign:1")
    assert code == 1
    assert out.splitlines()[-1].endswith("  (NOT as published: 1 file(s) changed)")
    assert "  inputs:" in out  # the rest of the manifest is still shown
    assert err.startswith(
        "aiaas show: error: foreign:1's model card is not the one published, so do not rely "
        "on it: card/card.md has sha256 "
    )
    assert f"({len(card)} bytes); its manifest lists " in err
    assert "put the published file back" in err

    store.delete(CARD)
    code, out, err = run(capsys, store, "show", "foreign:1")
    assert code == 1 and "card/card.md is missing from the store" in err


def test_show_prints_the_manifests_own_digest_which_an_edit_changes(
    capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path
) -> None:
    """The manifest is what every file is checked against, and nothing checks it: labels
    swapped in it are served as written. `show` prints its digest for an approver to compare."""
    _publish(capsys, store, tmp_path)
    key = f"{version_prefix('foreign', '1')}/manifest.json"
    stored = store.get_bytes(key)
    code, out, _ = run(capsys, store, "show", "foreign:1")
    assert code == 0
    assert out.splitlines()[3] == (
        f"  manifest:  sha256 {hashlib.sha256(stored).hexdigest()} (checked by nothing: "
        "compare it with the approved one)"
    )
    swapped = stored.replace(b'"cat"', b'"xxx"').replace(b'"dog"', b'"cat"')
    store.put_bytes(key, swapped.replace(b'"xxx"', b'"dog"'))
    code, out, _ = run(capsys, store, "show", "foreign:1")
    assert "labels:    dog, cat, fish" in out
    assert f"sha256 {hashlib.sha256(stored).hexdigest()}" not in out.splitlines()[3]
