"""`aiaas batch` re-runs SIGKILLed (an OOM kill) after keeping the input they replace aside:
each left its own copy under `work/previous/<token>/`, never removed, so the store grew by one
input-sized copy per kill. The next run of that name now removes the copies whose owner is
provably gone and that equal the input in place, and names the others in a warning; a live
concurrent re-run's copy is left alone, and so are other names' copies.

Real processes keep the copies aside (`keep_aside`) and are SIGKILLed, or stay alive; the
real CLI (`main`) runs next, on the directory store and moto's S3 server.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore, ObjectStore
from infra.cli.main import main
from tests.batch_support import features_csv, publish_classifier
from tests.reliability.test_batch_rerun_overlap import published_store

ROOT = Path(__file__).resolve().parents[2]
KEY = "batch/iris/input/x.csv"
PREVIOUS = "batch/iris/work/previous"
KEEP_ASIDE = """
import os, signal, sys
from functions.runtime.batch.layout import parse_input_key
from functions.runtime.store import open_store
from infra.cli.batch_undo import keep_aside
print(keep_aside(open_store(sys.argv[1]), parse_input_key(sys.argv[2])), flush=True)
if sys.argv[3] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer ends a run mid-score
sys.stdin.read()  # a live re-run: scoring until the test closes its stdin
"""


def keep_aside(store: ObjectStore, key: str, how: str) -> tuple[str, subprocess.Popen[str]]:
    """A real process keeps `key` aside, then is SIGKILLed (`kill`) or lives on (`live`)."""
    process = subprocess.Popen(
        [sys.executable, "-c", KEEP_ASIDE, store.uri, key, how],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    kept = process.stdout.readline().strip()
    if how == "kill":
        assert process.wait(30) == -9
    assert kept.startswith(f"{PREVIOUS}/"), kept
    return kept, process


def score(store: ObjectStore, csv: Path, name: str) -> None:
    assert main(["--store", store.uri, "batch", "iris", str(csv), "--name", name]) == 0


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_rerun_removes_killed_reruns_duplicate_copies_and_names_the_rest(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    store = published_store(request, tmp_path, monkeypatch, where)
    csv = {rows: tmp_path / f"{rows}.csv" for rows in (3, 5, 7)}
    for rows, path in csv.items():
        path.write_text(features_csv(np.ones((rows, 4))))
    score(store, csv[3], "x.csv")
    score(store, csv[3], "y.csv")
    # Three killed re-runs kept the scored input aside, the last killed after its upload
    # landed (put in place here by hand): the earlier input is in those copies only.
    earlier = [keep_aside(store, KEY, "kill")[0] for _ in range(3)]
    store.upload_file(csv[5], KEY)
    # Three more killed before their uploads landed: pure duplicates of the input in place.
    duplicates = [keep_aside(store, KEY, "kill")[0] for _ in range(3)]
    other, _ = keep_aside(store, "batch/iris/input/y.csv", "kill")  # another name's: not this run's
    live, running = keep_aside(store, KEY, "live")  # a re-run still scoring: its copy is its own
    try:
        caplog.clear()
        score(store, csv[7], "x.csv")
        kept = [k for k in store.list_keys(PREVIOUS) if k != live]
        assert store.get_bytes(live) == csv[5].read_bytes()
    finally:
        running.communicate("")
    # One copy of the earlier input stays (the others were copies of it), named to restore.
    assert other in kept and len(kept) == 2, kept
    restore = next(k for k in kept if k != other)
    assert restore in earlier and store.get_bytes(restore) == csv[3].read_bytes()
    # the warnings only: the INFO lines name the duplicates removed (where INFO is captured)
    err = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert err.count(" is an earlier x.csv a re-run kept aside") == 1, err
    assert (
        f"/{restore} is an earlier x.csv a re-run kept aside and did not put back (killed)" in err
    )
    assert "/batch/iris/input/x.csv to restore that input, or delete it" in err
    assert live not in err and other not in err and not any(d in err for d in duplicates)
    assert store.get_bytes(KEY) == csv[7].read_bytes()  # the run itself scored as ever
    assert store.exists("batch/iris/output/x.csv")


def test_a_copy_whose_owner_cannot_be_told_gone_is_named_never_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A copy from another machine (or a container beside this one) may be a live run's: the
    run names it, even as a duplicate of the input in place, and leaves it."""
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    store = LocalStore(tmp_path / "store")
    publish_classifier(store, tmp_path)
    csv = tmp_path / "x.csv"
    csv.write_text(features_csv(np.ones((3, 4))))
    score(store, csv, "x.csv")
    elsewhere = f"{PREVIOUS}/0123456789ab-1-00ff00ff00ff00ff/x.csv"
    store.copy(KEY, elsewhere, keep_etag=True)
    caplog.clear()
    score(store, csv, "x.csv")
    assert list(store.list_keys(PREVIOUS)) == [elsewhere]
    assert f"{elsewhere} is an earlier x.csv" in caplog.text
