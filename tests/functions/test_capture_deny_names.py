"""Deny-list names as a caller sets them (hunt_security2 1): printable, as the CLI shows them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.runtime.capture.setting import read_setting, set_capture
from functions.runtime.errors import BadRequest
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_capture import MODEL, publish


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = Registry(LocalStore(tmp_path / "store"))
    publish(registry, tmp_path)
    return registry


@pytest.mark.parametrize("field", ["x\nERROR aiaas: forged", "\x1b[2J", "a\tb", "x\u202ey"])
def test_a_denied_field_with_a_control_character_is_refused(
    registry: Registry, field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A deny name with a newline was stored, and `aiaas capture MODEL` printed it as a line of
    its own (a forged `ERROR ...`) or ran its escape sequence on the reader's terminal."""
    with pytest.raises(BadRequest, match="holds a control or formatting character"):
        set_capture(registry, MODEL, sample=0.1, deny=["email", field], actor="test")
    assert not registry.store.exists(f"models/{MODEL}/capture.json")
    # One a store already holds (another writer's) still reads, and the CLI shows it escaped.
    record = {"model": MODEL, "sample": 0.1, "deny": ["email", field]}
    registry.store.put_bytes(f"models/{MODEL}/capture.json", json.dumps(record).encode())
    assert read_setting(registry.store, MODEL).deny == {"email", field.strip()}
    assert main(["--store", str(registry.store.uri), "capture", MODEL]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "\x1b" not in out and "\t" not in out, out
    assert repr(field.strip())[1:-1] in out
