"""`aiaas versions` shows each alias's recent moves (who, when, what), `--json` all of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.publishing import publish_linear


def test_versions_lists_the_alias_history_newest_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2", "3"):
        publish_linear(registry, tmp_path, "m", version)
    registry.set_alias("m", "production", "1", actor="alice")
    registry.set_alias("m", "production", "2", weight=0.1, actor="bob")
    registry.set_shadow("m", "production", "3", 0.5, actor="carol")
    for move in range(5):
        registry.set_alias("m", "staging", str(move % 3 + 1), actor="ci")
    store = str(tmp_path / "store")
    assert main(["--store", store, "versions", "m"]) == 0
    out = capsys.readouterr().out.splitlines()
    start = out.index("@production history (3 states, newest first):")
    assert "carol" in out[start + 1] and out[start + 1].endswith(
        "1 (90%) + 2 (10%), shadow 3 (50% sampled)"
    )
    assert "bob" in out[start + 2] and out[start + 3].split()[-1] == "1"
    assert "@staging history (5 states, newest first):" in out
    assert main(["--store", store, "versions", "m", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    states = doc["alias_history"]["production"]
    assert [s["updated_by"] for s in states] == ["carol", "bob", "alice"]
    assert states[1]["weights"] == {"1": 0.9, "2": 0.1} and "history" not in states[0]
    # one shape a state: every one names its alias, and a state with no split has null weights
    assert {s["alias"] for s in states} == {"production"} and states[2]["weights"] is None
    assert all({"version", "shadow", "updated_at"} <= set(s) for s in states)


def test_moving_an_alias_where_it_already_is_records_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2"):
        publish_linear(registry, tmp_path, "m", version)
    store = str(tmp_path / "store")
    for argv in (["promote", "m", "1"], ["promote", "m", "2", "--weight", "0.1"]):
        assert main(["--store", store, *argv]) == 0
        first = registry.alias_record("m", "production")
        assert main(["--store", store, *argv]) == 0  # the same move again: a no-op, exit 0
        assert registry.alias_record("m", "production") == first
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "m@production -> 1 (unchanged: it already was; nothing recorded)"
    assert (
        out[3] == "m@production -> 1 (90%) + 2 (10%) (unchanged: it already was; nothing recorded)"
    )
    assert main(["--store", store, "versions", "m"]) == 0
    assert "@production history (2 states, newest first):" in capsys.readouterr().out


def test_shadowing_as_it_already_is_says_nothing_was_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2"):
        publish_linear(registry, tmp_path, "m", version)
    registry.set_alias("m", "production", "1")
    store = str(tmp_path / "store")
    for argv in (["shadow", "m", "2", "--sample", "0.2"], ["shadow", "m", "--off"]):
        assert main(["--store", store, *argv]) == 0
        assert main(["--store", store, *argv]) == 0  # again: nothing written
    out = capsys.readouterr().out.splitlines()
    assert out == [  # the repeats read like moves, as if each had been recorded
        "m@production -> 1, shadow 2 (20% sampled)",
        "m@production -> 1, shadow 2 (20% sampled) (unchanged: it already was; nothing recorded)",
        "m@production -> 1",
        "m@production -> 1 (unchanged: it already was; nothing recorded)",
    ]
    assert len(registry.alias_record("m", "production")["history"]) == 2  # type: ignore[index]
    assert main(["--store", store, "shadow", "m", "2", "--off"]) == 1
    assert "give a shadow VERSION or --off, not both" in capsys.readouterr().err
