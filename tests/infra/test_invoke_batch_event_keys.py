"""`aiaas invoke BatchFunction -e EVENT` with an event written by hand (hunt_batch2 4).

docs/batch.md has users set the golden events' key to theirs. An S3 event's key is URL-encoded
(`+` for a space, `%2B` for `+`), so a key typed as it is, `day1+day2.csv`, is read as
`day1 day2.csv`: the message "succeeded" with an INFO line, "the object no longer exists", and
nothing was scored. Now a WARNING names the object that does exist and the encoding; a key
written as S3 writes it scores.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from infra.cli.main import main
from infra.local.functions import NATIVE_SETTINGS
from tests.batch_support import features_csv, publish_classifier
from tests.functions.test_predict_events import EVENTS

NAME = "day1+day2.csv"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def invoke(store: Path, key: str, tmp_path: Path) -> int:
    """`aiaas invoke BatchFunction -e` of events/local/batch_s3.json naming `key`."""
    event = json.loads((EVENTS / "local" / "batch_s3.json").read_text())
    event["Records"][0]["s3"]["object"].update({"key": key, "eTag": "", "size": 0})
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return main(["--store", str(store), "invoke", "BatchFunction", "-e", str(path)])


def test_a_plus_not_url_encoded_is_named_and_an_encoded_one_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in NATIVE_SETTINGS:  # invoke exports them into os.environ: undone after the test
        monkeypatch.setenv(name, os.environ.get(name, "false"))
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    store = LocalStore(tmp_path / "store")
    publish_classifier(store, tmp_path)
    store.put_bytes(f"batch/iris/input/{NAME}", features_csv(np.ones((3, 4))).encode())
    warnings = Records()  # the process's log stream is its first installer's (another test's)
    logging.getLogger("aiaas.batch").addHandler(warnings)
    try:
        assert invoke(tmp_path / "store", f"batch/iris/input/{NAME}", tmp_path) == 0
    finally:
        logging.getLogger("aiaas.batch").removeHandler(warnings)
    out = capsys.readouterr().out
    (result,) = json.loads(out)["results"]
    reason = (
        "no object 'batch/iris/input/day1 day2.csv', but 'batch/iris/input/day1+day2.csv' "
        "exists: an event's key is URL-encoded, as S3 sends it, so its '+' reads as a space; "
        "write a '+' in a key as %2B"
    )
    assert (result["status"], result["reason"]) == ("ignored", reason)
    assert [r.levelname for r in warnings.records if reason in r.getMessage()] == ["WARNING"]
    assert not store.exists(f"batch/iris/output/{NAME}.summary.json")
    assert invoke(tmp_path / "store", "batch/iris/input/day1%2Bday2.csv", tmp_path) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert (result["status"], result["scored_rows"]) == ("succeeded", 3)
    # An object deleted since its event: as before, "no longer exists" alone.
    assert invoke(tmp_path / "store", "batch/iris/input/day3+day4.csv", tmp_path) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert (result["status"], result["reason"]) == ("ignored", "the object no longer exists")
