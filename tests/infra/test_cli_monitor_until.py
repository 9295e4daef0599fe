"""`aiaas monitor --until TIME`: drift over a past period, not only the last so long. Before,
a window always ended now, so last week's drift (the week of an incident) could not be read
once it was older than the window one dared ask for. The real predict service counts the rows;
its snapshot is then dated 3 days back, as one written then is."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from tests.infra.test_cli_explain import cli, store
from tests.infra.test_cli_monitor import serve
from tests.infra.test_cli_monitor_json import baselined

__all__ = ["baselined", "store"]  # fixtures: iris:1 published, with a training baseline

AGO = timedelta(days=3)


def _written_back(store: LocalStore) -> datetime:
    """Each snapshot moved AGO back (its times and its day folder); its new end."""
    end = datetime.now(UTC)
    for key in list(store.list_keys("monitoring/iris/1")):
        doc = json.loads(store.get_bytes(key))
        doc["start"] -= AGO.total_seconds()
        doc["end"] -= AGO.total_seconds()
        end = datetime.fromtimestamp(doc["end"], UTC)
        name = key.rsplit("/", 1)[1].split("-", 1)[1]
        store.put_bytes(
            f"monitoring/iris/1/{end.date()}/{end:%H%M%S}-{name}", json.dumps(doc).encode()
        )
        store.delete(key)
    return end


def test_a_past_period_is_judged_as_a_window_ending_now_is(
    baselined: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = np.random.default_rng(1).normal(size=(1000, 4))
    live[:, 2] += 2.0
    serve(baselined, tmp_path, live)
    capsys.readouterr()
    end = _written_back(baselined)

    def monitor(*flags: str) -> tuple[int, str, str]:
        return cli(baselined, capsys, "monitor", "iris", "--no-png", *flags)

    code, out, _ = monitor("--window", "1d")
    assert code == 0 and "0 rows served in the last 1d" in out  # 3 days ago: not in it
    at = (end + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    code, out, _ = monitor("--window", "10m", "--until", at)
    assert code == 0
    assert f"iris:1: 1000 rows served in the 10m to {at}:00Z (1 snapshot)" in out
    assert "petal_length" in out.split("2 of 5 drifted")[0]
    code, out, err = monitor("--window", "1d", "--until", f"{end.date()}", "--json")
    doc = json.loads(out)
    assert (doc["rows"], doc["until"]) == (1000, f"{end.date() + timedelta(days=1)}T00:00:00Z")
    code, _, err = monitor("--window", "1d", "--until", f"{end.date()}", "--fail-on-drift")
    assert code == 1 and "drift over PSI 0.2 in the 1d to " in err
    code, _, err = monitor("--until", "2999-01-01")
    assert code == 1 and "--until 2999-01-02T00:00:00Z is in the future" in err


def test_a_time_it_cannot_read_is_a_usage_error(
    store: LocalStore, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli(store, capsys, "monitor", "iris", "--until", "last tuesday")
    assert stopped.value.code == 2
    assert "give a UTC date (2026-11-20) or time (2026-11-20T14:00)" in capsys.readouterr().err
