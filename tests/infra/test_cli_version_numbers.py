"""A publish given no version after a 64-digit number (registry hunt 2).

`aiaas publish --version 999…9` (64 nines, a valid version) left the model without a next
number: every later publish without --version failed with "invalid version '1000…0'", a
version the user never gave, and for ever, as a number is never reused (pruned ones count).
It now says what happened and what to do, and `--version` still publishes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import ObjectStore
from tests import onnx_factory
from tests.infra.test_cli_registry import fails, run

HIGHEST = "9" * 64  # the longest version name, and the largest number one holds


def test_no_number_after_the_largest_says_so(
    capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path
) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    published = run(capsys, store, "publish", str(path), "--name", "m", "--version", HIGHEST)
    assert published[0] == 0, published[2]
    err = fails(capsys, store, "publish", str(path), "--name", "m")
    assert "invalid version" not in err and "1" + "0" * 64 not in err
    assert "has no next version number" in err and "(64 digits)" in err
    assert "--version NAME" in err
    assert Registry(store).versions("m") == [HIGHEST]  # nothing else was written
    code, _, err = run(capsys, store, "publish", str(path), "--name", "m", "--version", "2")
    assert code == 0, err  # a version given is published as ever
    assert Registry(store).versions("m") == ["2", HIGHEST]


def test_the_next_number_below_the_largest_is_as_before(
    capsys: pytest.CaptureFixture[str], store: ObjectStore, tmp_path: Path
) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    almost = "9" * 63 + "8"
    assert run(capsys, store, "publish", str(path), "--name", "m", "--version", almost)[0] == 0
    code, out, err = run(capsys, store, "publish", str(path), "--name", "m")
    assert code == 0, err
    assert f"published m:{HIGHEST} " in out
