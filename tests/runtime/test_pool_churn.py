"""`EvictionChurn`: a reload soon after an eviction is counted and said at most once a minute;
one past the window, or of a version never evicted, is a plain load."""

from __future__ import annotations

import logging

import pytest

from functions.runtime.pool_churn import EvictionChurn


def test_reloads_are_counted_and_said_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    churn = EvictionChurn(logging.getLogger("aiaas.test"), 2, clock=lambda: now[0])
    why = "2 versions loaded (AIAAS_MAX_VERSIONS)"
    with caplog.at_level(logging.WARNING, "aiaas.test"):
        assert not churn.reloaded(("m", "1"))  # never evicted: a first load
        for second, version in enumerate(("1", "2", "3")):
            now[0] = float(second)
            churn.evicted(("m", version), why)
        now[0] = 10.0
        assert churn.reloaded(("m", "1")) and churn.reloaded(("m", "2"))
        now[0] = 71.0
        assert churn.reloaded(("m", "3"))  # a minute after the first line: said again
        churn.evicted(("m", "1"), why)
        now[0] = 71.0 + 301
        assert not churn.reloaded(("m", "1"))  # past the window: routine
    assert churn.reloads == 3
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2
    assert said[0].startswith("m:1 loaded again 10 s after its eviction (2 versions loaded")
    assert "1 such reload(s) since the last line, 1 in all" in said[0]
    assert said[1].startswith("m:3 loaded again 69 s after")
    assert "2 such reload(s) since the last line, 3 in all" in said[1]
