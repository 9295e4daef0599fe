"""`aiaas monitor --until TIME`: drift over a past period, not only the last so long. Before,
a window always ended now, so last week's drift (the week of an incident) could not be read
once it was older than the window one dared ask for. The real predict service counts the rows;
its snapshot is then dated 3 days back, as one written then is."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from infra.cli import monitor_commands
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
    # as typed: "--until 2999-01-02T00:00:00Z" named a day the user did not write
    assert code == 1 and "--until 2999-01-01 is after today" in err
    # The same day in ISO's basic spelling is the same whole day (it was the day's start).
    code, out, _ = monitor("--window", "1d", "--until", f"{end.date():%Y%m%d}", "--json")
    assert (json.loads(out)["rows"], json.loads(out)["until"]) == (doc["rows"], doc["until"])


def test_today_reads_today_so_far_and_only_a_later_day_is_refused(
    baselined: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--until $(date -u +%F)`, a daily cron's obvious spelling, was refused as the future."""
    serve(baselined, tmp_path, np.random.default_rng(1).normal(size=(300, 4)))
    capsys.readouterr()
    today = datetime.now(UTC).date()
    code, out, err = cli(
        baselined, capsys, "monitor", "iris", "--window", "1d", "--until", f"{today}", "--json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["rows"], doc["since"]) == (300, f"{today}T00:00:00Z")  # the day, so far
    until = datetime.fromisoformat(doc["until"])
    assert abs((until - datetime.now(UTC)).total_seconds()) < 60  # clamped to now
    ahead = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()  # a clock a little ahead
    code, out, _ = cli(
        baselined, capsys, "monitor", "iris", "--no-png", "--window", "1h", "--until", ahead
    )
    assert (
        code == 0 and "iris:1: 300 rows served in the 1h to " in out and "so far (to now, " in out
    )
    tomorrow = f"{today + timedelta(days=1)}"
    # The heading names the day's end and now: `the 1d to <now>` read as the 24 h before now.
    code, out, _ = cli(
        baselined, capsys, "monitor", "iris", "--no-png", "--window", "1d", "--until", f"{today}"
    )
    assert (
        code == 0 and f"300 rows served in the 1d to {tomorrow}T00:00:00Z, so far (to now, " in out
    )
    code, _, err = cli(baselined, capsys, "monitor", "iris", "--until", tomorrow)
    assert code == 1 and f"--until {tomorrow} is after today" in err


def test_a_clock_a_little_ahead_past_midnight_reads_up_to_now(
    baselined: LocalStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """10 s before midnight, another machine's clock 70 s ahead names tomorrow: today so far,
    as a time a little ahead earlier in the day is (it was refused as after today)."""
    midnight = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), time(), UTC)
    now = midnight.timestamp() - 10
    monkeypatch.setattr(monitor_commands, "time", SimpleNamespace(time=lambda: now))
    ahead = (midnight + timedelta(seconds=60)).isoformat()
    code, out, err = cli(
        baselined, capsys, "monitor", "iris", "--window", "1h", "--until", ahead, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["until"] == f"{midnight - timedelta(seconds=10):%Y-%m-%dT%H:%M:%S}Z"
    later = (midnight + timedelta(minutes=10)).isoformat()  # past the skew allowed: refused
    code, _, err = cli(baselined, capsys, "monitor", "iris", "--until", later)
    assert code == 1 and "is after today" in err


@pytest.mark.parametrize(
    "flags", [("--until", "0001-01-01"), ("--window", "1000000d"), ("--until", "9999-12-31")]
)
def test_a_window_out_of_the_calendar_is_one_line_not_a_traceback(
    baselined: LocalStore, capsys: pytest.CaptureFixture[str], flags: tuple[str, ...]
) -> None:
    code, out, err = cli(baselined, capsys, "monitor", "iris", "--no-png", *flags)
    assert code == 1 and out == "" and len(err.splitlines()) == 1, err
    assert "before 1970" in err or "is after today" in err


# A week (2026-W49) or a day of the year (2026-339) was read as a day (the week's Monday):
# `--until 2026-W49` judged one Monday where the user meant the week.
@pytest.mark.parametrize(
    "given", ["last tuesday", "2026-W49", "2026W49", "2026-339", "2026-W49-3T10:00"]
)
def test_a_time_it_cannot_read_is_a_usage_error(
    store: LocalStore, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli(store, capsys, "monitor", "iris", "--until", given)
    assert stopped.value.code == 2
    assert "give a UTC date (2026-11-20) or time (2026-11-20T14:00)" in capsys.readouterr().err


def test_a_window_past_the_retention_says_older_snapshots_may_have_expired(
    baselined: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 0 rows for a past quarter read as "nothing was served", where the snapshots had expired.
    serve(baselined, tmp_path, np.random.default_rng(1).normal(size=(300, 4)))
    capsys.readouterr()
    code, out, err = cli(baselined, capsys, "monitor", "iris", "--window", "120d", "--json")
    assert code == 0 and json.loads(out)["rows"] == 300
    assert err.strip() == (
        "note: drift snapshots older than 90 days may have expired (the default of `aiaas "
        "serve --monitoring-days` and the stack's MonitoringRetentionDays)"
    )
    code, out, err = cli(baselined, capsys, "monitor", "iris", "--window", "30d", "--json")
    assert code == 0 and err == ""


def test_a_window_shorter_than_the_rest_of_today_ends_now_not_backwards() -> None:
    # At 14:00 `--until TODAY --window 6h` read from 18:00 to 14:00: an empty window, since
    # after until, and "0 rows ... no counts were written" for a model serving all day.
    from infra.cli.monitor_period import moment, period

    now = datetime(2026, 12, 5, 14, 0, tzinfo=UTC).timestamp()
    span = period("6h", moment("2026-12-05"), now)
    assert (span.since, span.until) == (now - 6 * 3600, now)
    whole = period("1d", moment("2026-12-05"), now)  # the day so far, as before
    assert moment("20261205") == moment("2026-12-05") == moment("2026-12-06T00:00")
    assert moment("2026-12-05 14:00") == now
    assert (whole.since, whole.until) == (now - 14 * 3600, now)
