"""`aiaas versions` and `aiaas show` escape control characters from the store's records.

An alias change's actor (from an authorizer's claims, or another writer of the store) and a
manifest's labels were printed raw: a newline forged a line of the history, and ESC sequences
retitled and recoloured the reader's terminal (security hunt 2). `--json` was already safe."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_cli_registry import run

ACTOR = "\x1b]0;pwned\x07\x1b[31mev\nFAKE (i)   1"


def test_records_print_escaped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    registry = Registry(store)
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    labels = ("a\x1b[31m", "b", "c")
    for version in ("1", "2"):
        registry.publish(onnx_factory.manifest_for(path, "iris", version, labels=labels), path)
    registry.set_alias("iris", "production", "1")
    registry.set_alias("iris", "production", "2", actor=ACTOR)
    code, out, err = run(capsys, store, "versions", "iris")
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out
    assert not any(line.startswith("FAKE") for line in out.splitlines())
    assert "\\x1b]0;pwned\\x07" in out
    code, out, err = run(capsys, store, "show", "iris:2")
    assert code == 0, err
    assert "\x1b" not in out
    assert "labels:    a\\x1b[31m, b, c" in out
