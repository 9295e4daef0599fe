"""The ShadowFunction counts each copy once when Lambda delivers or runs a batch again.

CloudWatch Logs delivers a subscription's events at least once, and an asynchronous invoke that
fails (a timeout partway through a batch) is retried whole: every copy replayed before the
failure was replayed and counted again, doubling the agreement counts a rollout judges."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from functions.predict import metric_names as m
from infra.local.functions import load_handler
from tests.functions.test_predict_shadow import registry_with
from tests.functions.test_shadow_handler import EVENT, ROWS, emf

COPIES = 3 * ROWS


class Context:
    """Lambda's context, with `left_ms` of the invocation's Timeout left."""

    def __init__(self, left_ms: int) -> None:
        self.left_ms = left_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.left_ms


def function(tmp_path: Path) -> Any:
    """One execution environment of the ShadowFunction (its module state lives across calls)."""
    registry_with(tmp_path, ("a", "b", "c"))
    env = {"AIAAS_STORE": str(tmp_path / "store"), "AIAAS_CACHE_DIR": str(tmp_path / "cache")}
    return load_handler("functions.shadow.handler.handler", env)


class Said(logging.Handler):
    """The `aiaas` logger's messages."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def counted(printed: str, metric: str) -> float:
    return sum(float(doc.get(metric, 0)) for doc in emf(printed))


def test_a_batch_delivered_again_is_not_counted_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handler, event = function(tmp_path), json.loads(EVENT.read_text())
    capsys.readouterr()
    first = handler(event, Context(120_000))
    assert (first["replayed"], first["repeated"]) == (COPIES, 0)
    assert counted(capsys.readouterr().out, m.SHADOW_REQUESTS) == COPIES
    again = handler(event, Context(120_000))
    assert again == {
        "copies": 0, "replayed": 0, "failed": 0, "not_copies": 0, "dropped": 0,
        "repeated": COPIES,
    }  # fmt: skip
    assert counted(capsys.readouterr().out, m.SHADOW_REQUESTS) == 0


def test_near_the_timeout_copies_are_dropped_and_counted_not_timed_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A timeout resets the environment and brings the whole batch back: the replay stops
    RESERVE_S before it and counts what it left as dropped, once."""
    from functions.shadow.handler import RESERVE_S

    handler, event = function(tmp_path), json.loads(EVENT.read_text())
    capsys.readouterr()
    said = Said()
    logging.getLogger("aiaas").addHandler(said)  # its own handler writes where it was installed
    try:
        result = handler(event, Context(int(RESERVE_S * 1000)))
    finally:
        logging.getLogger("aiaas").removeHandler(said)
    assert result["dropped"] == COPIES and result["replayed"] == 0
    printed = capsys.readouterr()
    assert counted(printed.out, m.SHADOW_DROPPED) == COPIES
    assert counted(printed.out, m.SHADOW_REQUESTS) == 0
    assert any("not replayed: the function's Timeout was near" in line for line in said.lines)
    # Those copies were never replayed here: a delivery of them again replays them.
    assert handler(event, Context(120_000))["replayed"] == COPIES
