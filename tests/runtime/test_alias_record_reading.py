"""How the registry reads an alias record it did not write: one shape for every reader.

A record is corrupt (CorruptRecord) only when what it serves cannot be read; the rest is read
leniently (functions/runtime/alias_record.py). Whatever a record holds, every record it reads
is one the control plane's response model takes, and the next record a move writes from it is
read back without a repair: a move never answers a 500 after it wrote.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from functions.control.schemas import AliasRecord
from functions.runtime import alias_record, names
from functions.runtime.alias_record import next_alias_record, parse_alias_record
from functions.runtime.aliases import AliasTarget
from functions.runtime.errors import CorruptRecord
from functions.runtime.registry import Registry, alias_key
from functions.runtime.store import LocalStore
from tests.publishing import publish_linear

WHEN = "2026-01-02T03:04:05Z"
STATE = {
    "version": "1",
    "weights": {"1": 0.9, "2": 0.1},
    "shadow": {"version": "3", "sample": 0.5},
    "updated_at": WHEN,
    "updated_by": "ops",
    "deleted_at": WHEN,
    "deleted_by": "ops",
}
ODD = [None, "x", "", 5, 1.5, True, [], {}, ["x"], {"version": "2"}, {"a": 1}, "../2", {"1": 2}]


def variants() -> list[dict[str, Any]]:
    """A well-formed record with each key, and each key of a history entry, made odd."""
    found: list[dict[str, Any]] = []
    for key in [*STATE, "history", "alias"]:
        found.extend({**STATE, "history": [dict(STATE)], key: odd} for odd in ODD)
    for key in STATE:
        found.extend({**STATE, "history": [{**STATE, key: odd}]} for odd in ODD)
    found.extend({**STATE, "history": [odd, dict(STATE)]} for odd in ODD)
    return found


def test_every_record_read_is_one_the_control_plane_answers_and_moves() -> None:
    corrupt = 0
    for record in variants():
        raw = json.dumps(record).encode()
        try:
            read = parse_alias_record("m", "a", raw)
        except CorruptRecord:
            corrupt += 1
            continue
        AliasRecord.model_validate({**read, "model": "m", "alias": "a"})
        for state in (read, *read["history"]):
            AliasTarget.of(state).describe()  # what `aiaas versions` prints of each
            assert all(isinstance(state.get(k, ""), str) for k in ("updated_at", "updated_by"))
        moved = next_alias_record("m", "a", raw, AliasTarget("2"), "ci")
        AliasRecord.model_validate({**moved, "model": "m", "alias": "a"})
        again = parse_alias_record("m", "a", json.dumps(moved).encode())
        assert again == moved, record  # nothing left for a reader to repair
    # Only what decides what is served makes a record corrupt: its version, split or shadow.
    assert corrupt == sum(1 for r in variants() if not _serves(r))


def _serves(record: dict[str, Any]) -> bool:
    try:
        return names.version_name(record["version"]) != "" and AliasTarget.of(record) is not None
    except Exception:  # any failure: it cannot say what it serves
        return False


@pytest.mark.parametrize(
    ("history", "kept"),
    [
        ("x", []),
        ({"version": "2"}, []),
        (["x", 5, None, [], {}, {"version": "../2"}, {"version": 2}], []),
        ([{"version": "2"}, {"version": "3", "weights": {"3": 2}}], ["2"]),
        ([{"version": "2", "shadow": {"version": "3"}}, {"version": "3"}], ["3"]),
    ],
)
def test_history_entries_that_are_not_states_are_dropped_and_said_once(
    history: object,
    kept: list[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(alias_record, "_WARNED", set())  # as in a new process
    raw = json.dumps({"version": "1", "updated_at": WHEN, "history": history}).encode()
    with caplog.at_level(logging.WARNING, logger="aiaas.registry"):
        for _ in range(3):  # a move reads the record 4-5 times; a GET, each time
            read = parse_alias_record("m", "a", raw)
            assert [h["version"] for h in read["history"]] == kept
    (said,) = [r.getMessage() for r in caplog.records]  # once for the stored record
    assert said.startswith("alias 'a' of model 'm': its record read leniently")
    moved = next_alias_record("m", "a", raw, AliasTarget("2"), "ci")
    assert [h["version"] for h in moved["history"]] == ["1", *kept]


def test_a_record_whose_version_is_not_in_its_split_reads_as_what_it_serves(
    tmp_path: Path,
) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2", "3"):
        publish_linear(registry, tmp_path, "m", version)
    stored = {"version": "3", "weights": {"1": 0.4, "2": 0.6}, "updated_at": WHEN}
    registry.store.put_bytes(alias_key("m", "production"), json.dumps(stored).encode())
    # the split serves 2 (and 1); `version` said 3, which readers of the main version got
    target = registry.alias_target("m", "production")
    assert (target.version, target.canary) == ("2", "1")
    assert registry.alias("m", "production") == "2" == registry.resolve("m").version
    assert registry.aliases("m") == {"production": "2"}
