"""`aiaas promote` and `aiaas shadow` losing a race to another command that set the same target:
they wrote nothing, and say so, where they printed a move with a stale "was" (8 of 160
commands when eight ran at once on one alias)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from functions.runtime.aliases import Written
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory

ALIAS_KEY = "models/m/aliases/production.json"


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = Registry(LocalStore(tmp_path / "store"))
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    for version in ("1", "2", "3"):
        registry.publish(onnx_factory.manifest_for(path, "m", version), path)
    registry.set_alias("m", "production", "1")
    return registry


def another_command_first(monkeypatch: pytest.MonkeyPatch, move: Callable[[], object]) -> None:
    """`move` (another command's) lands just before this command's compare-and-swap reads the
    alias record: after anything the command read of it first."""
    real = LocalStore.read_versioned
    pending = [move]

    def read_versioned(self: LocalStore, key: str) -> tuple[bytes, str]:
        if key == ALIAS_KEY and pending:
            pending.pop()()
        return real(self, key)

    monkeypatch.setattr(LocalStore, "read_versioned", read_versioned)


def test_a_promote_another_command_made_first_says_unchanged(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = Registry(registry.store)
    another_command_first(monkeypatch, lambda: other.set_alias("m", "production", "2"))
    assert main(["--store", registry.store.uri, "promote", "m", "2"]) == 0
    out = capsys.readouterr().out
    assert out == "m@production -> 2 (unchanged: it already was; nothing recorded)\n"
    history = registry.alias_record("m", "production")["history"]  # type: ignore[index]
    assert [entry["version"] for entry in history] == ["1"]  # the other command's move alone


def test_a_promote_says_what_it_replaced_not_what_it_read_before(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = Registry(registry.store)
    another_command_first(monkeypatch, lambda: other.set_alias("m", "production", "2"))
    assert main(["--store", registry.store.uri, "promote", "m", "3"]) == 0
    assert capsys.readouterr().out == "m@production -> 3 (was 2)\n"


def test_a_shadow_another_command_set_first_says_unchanged(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = Registry(registry.store)
    another_command_first(monkeypatch, lambda: other.set_shadow("m", "production", "3", 0.5))
    assert main(["--store", registry.store.uri, "shadow", "m", "3", "--sample", "0.5"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("(unchanged: it already was; nothing recorded)\n"), out


def test_the_registry_tells_whether_a_move_wrote(registry: Registry) -> None:
    moved, again = Written(), Written()
    registry.set_alias("m", "production", "2", written=moved)
    registry.set_alias("m", "production", "2", written=again)
    assert (moved.written, again.written) == (True, False)
    shadowed, off = Written(), Written()
    registry.set_shadow("m", "production", "3", written=shadowed)
    registry.set_shadow("m", "production", None, written=off)
    assert (shadowed.written, off.written) == (True, True)
