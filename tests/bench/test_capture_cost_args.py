"""`python -m bench.capture_cost --repeat N` times its calls in blocks of 1000: below that it
timed none and died on a ZeroDivisionError from its child process after seconds of set-up;
now it says what to give at once."""

from __future__ import annotations

from typing import Any

import pytest

from bench import capture_cost


def test_a_repeat_under_one_block_is_refused_at_once(monkeypatch: Any, capsys: Any) -> None:
    def no_run(repeat: int) -> dict[str, list[float]]:
        raise AssertionError(f"ran {repeat} calls, none of them timed")

    monkeypatch.setattr(capture_cost, "run", no_run)
    monkeypatch.setattr("sys.argv", ["capture_cost", "--repeat", "200", "--runs", "1"])
    with pytest.raises(SystemExit) as caught:
        capture_cost.main()
    assert caught.value.code == 2
    assert "--repeat must be at least 1000" in capsys.readouterr().err


def test_no_runs_is_refused_at_once(monkeypatch: Any, capsys: Any) -> None:
    """`--runs 0` set up nothing, then died on an IndexError (the first run's cases)."""

    def no_run(repeat: int) -> dict[str, list[float]]:
        raise AssertionError("ran with no runs to report")

    monkeypatch.setattr(capture_cost, "run", no_run)
    monkeypatch.setattr("sys.argv", ["capture_cost", "--runs", "0"])
    with pytest.raises(SystemExit) as caught:
        capture_cost.main()
    assert caught.value.code == 2
    assert "argument --runs: 0 is not a count" in capsys.readouterr().err
