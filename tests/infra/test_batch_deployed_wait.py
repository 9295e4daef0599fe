"""`aiaas batch --deployed --wait`: what the wait shows while the stack scores the upload.

The stack is the batch function's own plan, shard and merge steps on the same directory store,
stepped between two polls where the wait pauses (Step Functions' sequencing is what is left out);
the lines are the CLI's stderr, a log's (one line per change), or a fake terminal's.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from functions.batch.events import store_location
from functions.runtime.batch.layout import parse_input_key
from functions.runtime.batch.run import RunInput, run_object
from functions.runtime.batch.shards import merge_run, plan_run, score_shard
from functions.runtime.store import LocalStore
from infra.cli import batch_wait, row_progress
from infra.cli.main import main
from infra.cli.row_progress import Waiting
from tests.batch_support import features_csv, pool, run_settings, store_with_classifier

WHAT = "iris batch rows.csv on the stack: "


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalStore:
    monkeypatch.setattr(row_progress, "SHOW_AFTER_S", 0.0)  # as if the wait took minutes
    return store_with_classifier(tmp_path, monkeypatch)


def stack_lines(err: str) -> list[str]:
    """stderr less the note a directory store gets (the stack here is this test's steps)."""
    return [line for line in err.splitlines() if not line.startswith("note: a directory store")]


def stack(store: LocalStore, workdir: Path, name: str, shards: int) -> list[Callable[[], object]]:
    """The state machine's steps for upload `name`, one per pause of the wait."""
    models = pool(store, workdir)
    plan: dict[str, object] = {}

    def run() -> RunInput:
        obj = parse_input_key(f"batch/iris/input/{name}")
        assert obj is not None
        return RunInput(obj, store_location(store)[0], store.head(obj.input_key))

    def planned() -> None:
        plan.update(plan_run(store, models, run(), shards, run_settings(4)))

    def shard(index: int) -> None:
        item = json.loads(store.get_bytes(str(plan["plan_key"])))[index]
        score_shard(store, models, item, run_settings())

    steps = [lambda: None, planned, *(lambda i=i: shard(i) for i in range(shards))]
    return [*steps, lambda: merge_run(store, plan)]


def test_the_wait_shows_each_state_the_store_tells_then_the_report(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """It showed nothing at all until the summary came (or the timeout)."""
    steps = stack(store, tmp_path, "rows.csv", shards=2)
    monkeypatch.setattr(batch_wait, "pause", lambda seconds: steps.pop(0)())
    data = tmp_path / "rows.csv"
    data.write_text(features_csv(np.ones((8, 4))))
    args = ["--store", store.uri, "batch", "iris", str(data), "--deployed", "--wait", "--json"]
    assert main(args) == 0
    shown = capsys.readouterr()
    assert json.loads(shown.out)["scored_rows"] == 8  # stdout: the summary alone
    lines = stack_lines(shown.err)
    assert all(line.endswith(" s waited") for line in lines), lines
    # A log gets a line per change: two polls pending, one line.
    assert [line.rsplit(", ", 1)[0] for line in lines] == [
        WHAT + "pending (no record of its run in the store yet)",
        WHAT + "0 of 2 parts scored (0 rows)",
        WHAT + "1 of 2 parts scored (4 rows)",
        WHAT + "2 of 2 parts scored (8 rows)",
    ]
    assert steps == []


def test_no_progress_shows_nothing_and_a_timeout_says_the_last_state(
    store: LocalStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    def scored(seconds: float) -> None:  # the stack's one invocation: no record until done
        obj = parse_input_key("batch/iris/input/quiet.csv")
        assert obj is not None
        run = RunInput(obj, store_location(store)[0], store.head(obj.input_key))
        run_object(store, pool(store, tmp_path), run, run_settings())

    monkeypatch.setattr(batch_wait, "pause", scored)
    data = tmp_path / "quiet.csv"
    data.write_text(features_csv(np.ones((3, 4))))
    args = ["--store", store.uri, "batch", "iris", str(data), "--deployed", "--wait"]
    assert main([*args, "--no-progress"]) == 0
    shown = capsys.readouterr()
    assert shown.out.splitlines()[1].startswith("succeeded: scored 3 of 3 rows with iris:1")
    assert stack_lines(shown.err) == []
    assert main([*args, "--name", "late.csv", "--timeout", "0"]) == 1
    err = "\n".join(stack_lines(capsys.readouterr().err))
    assert err.startswith("iris batch late.csv on the stack: pending (")
    assert "no summary for run " in err and "after 0 s (last seen: pending (no record" in err


def test_a_terminal_redraws_the_line_at_each_poll_and_ends_it() -> None:
    now = [0.0]
    out = Terminal()
    with Waiting("m batch a.csv on the stack", stream=out, clock=lambda: now[0]) as shown:
        shown("pending")
        now[0] = 2.0
        shown("pending")
        now[0] = 65.0
        shown("3 of 8 parts scored (1,200 rows)")
        now[0] = 67.0
        shown("3 of 8 parts scored (1,200 rows)")  # the time waited moves on
    assert out.getvalue().split("\r")[1:] == [
        "m batch a.csv on the stack: pending, 2 s waited",
        "m batch a.csv on the stack: 3 of 8 parts scored (1,200 rows), 1 min 05 s waited",
        "m batch a.csv on the stack: 3 of 8 parts scored (1,200 rows), 1 min 07 s waited\n",
    ]
