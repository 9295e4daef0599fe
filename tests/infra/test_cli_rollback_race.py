"""Two rollbacks of one alias at once (two people hitting the brake on one bad version, an
alarm's automation and its on-call): the one that lost the compare-and-swap chose again on the
record the other had just written, and rolled that rollback back: the bad version served
again and both exited 0 (hunt_races 6). A rollback now moves only from the record it read."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory

ALIAS_KEY = "models/m/aliases/production.json"


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """m:1, m:2, m:3; production moved 1 -> 2 -> 3 (3 is the bad one)."""
    registry = Registry(LocalStore(tmp_path / "store"))
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    for version in ("1", "2", "3"):
        registry.publish(onnx_factory.manifest_for(path, "m", version), path)
        registry.set_alias("m", "production", version, actor="alice")
    return registry


def another_command_between(monkeypatch: pytest.MonkeyPatch, move: Callable[[], object]) -> None:
    """`move` (another command's) lands just after this command first read the alias record,
    before its write: the write's compare-and-swap fails, and it reads the record again."""
    real = LocalStore.read_versioned
    pending = [move]

    def read_versioned(self: LocalStore, key: str) -> tuple[bytes, str]:
        read = real(self, key)
        if key == ALIAS_KEY and pending:
            pending.pop()()
        return read

    monkeypatch.setattr(LocalStore, "read_versioned", read_versioned)


def versions(registry: Registry) -> list[str]:
    record = registry.alias_record("m", "production")
    assert record is not None
    return [record["version"], *(entry["version"] for entry in record["history"])]


def test_two_rollbacks_at_once_roll_back_once(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = Registry(registry.store)
    another_command_between(monkeypatch, lambda: other.rollback("m", "production", actor="bob"))
    assert main(["--store", registry.store.uri, "rollback", "m"]) == 0
    assert registry.alias("m", "production") == "2"  # was 3: bob's rollback rolled back
    assert versions(registry) == ["2", "3", "2", "1"]  # bob's move alone, written once
    assert capsys.readouterr().out == "m@production -> 2 (rolled back from 3)\n"


def test_a_rollback_racing_a_promote_moves_nothing(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = Registry(registry.store)
    another_command_between(
        monkeypatch, lambda: other.set_alias("m", "production", "1", actor="bob")
    )
    assert main(["--store", registry.store.uri, "rollback", "m"]) == 1
    assert registry.alias("m", "production") == "1"  # bob's promote stands
    assert versions(registry) == ["1", "3", "2", "1"]
    err = capsys.readouterr().err
    assert (
        "alias 'production' of model 'm' was moved while it was being rolled back (to 1 by bob"
        in err
    )
    assert "nothing rolled back" in err


def test_a_rollback_after_another_has_finished_is_refused_for_a_minute(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    """Most pairs do not overlap: the second reads the alias after the first wrote (or a
    retried rollback after its first answer was lost), and went back to the bad version."""
    assert registry.rollback("m", "production", actor="bob")["version"] == "2"
    assert main(["--store", registry.store.uri, "rollback", "m"]) == 1
    err = capsys.readouterr().err
    assert re.search(
        r"alias 'production' of model 'm' was rolled back to 2 from 3 by bob \d+ s ago: a "
        r"rollback now would undo that or go further back \(two rollbacks at once",
        err,
    ), err
    assert registry.alias("m", "production") == "2"
    # On purpose, by naming the version; and a minute later a plain rollback undoes it again.
    assert main(["--store", registry.store.uri, "rollback", "m", "--to", "3"]) == 0
    assert registry.alias("m", "production") == "3"


def test_a_canary_rolled_back_twice_at_once_goes_back_once(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.set_alias("m", "production", "1", weight=0.1, actor="alice")  # 3 (90%) + 1 (10%)
    assert registry.rollback("m", "production", actor="bob").get("weights") is None  # 3 alone
    assert main(["--store", registry.store.uri, "rollback", "m"]) == 1  # not on to 2
    assert registry.alias("m", "production") == "3"


def test_an_old_move_back_is_rolled_back_as_before(registry: Registry) -> None:
    """Only a recent move back is in question: a minute on, a rollback undoes it as it did."""
    back = registry.rollback("m", "production", actor="bob")
    record = registry.alias_record("m", "production")
    assert record is not None and back["version"] == "2"
    record["updated_at"] = "2026-01-01T00:00:00Z"  # as if long ago
    registry.store.put_bytes(ALIAS_KEY, json.dumps(record).encode())
    assert registry.rollback("m", "production", actor="carol")["version"] == "3"


def stamped(registry: Registry, ahead_s: int) -> None:
    """The alias record's time as a host whose clock runs `ahead_s` seconds ahead wrote it."""
    record = registry.alias_record("m", "production")
    assert record is not None
    then = datetime.now(UTC) + timedelta(seconds=ahead_s)
    record["updated_at"] = then.isoformat(timespec="seconds").replace("+00:00", "Z")
    registry.store.put_bytes(ALIAS_KEY, json.dumps(record).encode())


def test_a_move_back_stamped_by_a_clock_ahead_is_judged_on_its_window_alone(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    """The record's time is its writer's clock (another host, a Lambda): a few seconds ahead
    is now (the refusal said "-20 s ago"); hours ahead is no time to go by (it was refused for
    as long as the skew lasted, saying "-7200 s ago") (review_rev5 1)."""
    assert registry.rollback("m", "production", actor="bob")["version"] == "2"
    stamped(registry, 20)
    assert main(["--store", registry.store.uri, "rollback", "m"]) == 1
    assert "by bob 0 s ago: a rollback now would undo that" in capsys.readouterr().err
    stamped(registry, 7200)
    assert main(["--store", registry.store.uri, "rollback", "m"]) == 0
    assert registry.alias("m", "production") == "3"


def test_a_rollback_retried_by_its_actor_answers_success_and_changes_nothing(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An automation whose rollback timed out (the answer lost, the move made) retries: that
    was a 409 (`aiaas rollback m || page` paged); the alias is where its own rollback put it,
    so it answers that, exit 0, nothing written. Another actor still gets the 409 (review_rev5 4)."""
    monkeypatch.setenv("AIAAS_ACTOR", "bot")
    assert main(["--store", registry.store.uri, "rollback", "m"]) == 0
    written = registry.alias_record("m", "production")
    capsys.readouterr()
    assert main(["--store", registry.store.uri, "rollback", "m"]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(
        r"m@production -> 2 \(already rolled back to 2 from 3 by you \d+ s ago\)\n", out
    ), out
    assert registry.alias_record("m", "production") == written  # nothing written
    assert versions(registry) == ["2", "3", "2", "1"]
    monkeypatch.setenv("AIAAS_ACTOR", "carol")
    assert main(["--store", registry.store.uri, "rollback", "m"]) == 1
    assert "was rolled back to 2 from 3 by bot" in capsys.readouterr().err
    assert registry.alias_record("m", "production") == written
