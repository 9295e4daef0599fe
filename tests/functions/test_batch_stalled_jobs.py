"""A deployed job that no run will score says so once its message cannot be in the queue
(hunt_batch2, left).

An event EventBridge cannot deliver to the batch queue, or a message on whose every delivery
BatchFunction times out, goes to the dead-letter queue without a run ever writing a record: the
job API read `pending` for good and `aiaas batch --deployed --wait` waited out its timeout (up
to a day). Past the queue's visibility timeout x maxReceiveCount (7.5 h) with no record of the
upload's run, the job reads `pending` with `"stalled": true` and a hint naming the dead-letter
queue, and `--wait` stops with it.

Both Lambda handlers as Lambda builds them, over S3 on moto's server; the clock is moved on in
`stalls.now` (the upload's LastModified is S3's own), nothing else is stood in for.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from functions.runtime.batch import stalls
from functions.runtime.batch.layout import run_id
from functions.runtime.s3store import S3Store
from infra.cli import batch_wait
from infra.cli.main import main
from infra.local.functions import load_handler
from tests.batch_support import features_csv, publish_classifier
from tests.functions.test_batch_dead_letters import NAME, deliver, job_call, job_status

ROOT = Path(__file__).resolve().parents[2]
ROWS = features_csv(np.ones((4, 4))).encode()


@pytest.fixture
def deployed(s3_store: S3Store, tmp_path: Path) -> tuple[Any, Any, S3Store]:
    publish_classifier(s3_store, tmp_path)
    env = {"AIAAS_STORE": f"s3://{s3_store.bucket}/registry"}
    batch = load_handler(
        "functions.batch.handler.handler", {**env, "AIAAS_CACHE_DIR": str(tmp_path / "cache")}
    )
    control = load_handler("functions.control.handler.handler", env)
    return batch, control, s3_store


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    monkeypatch.setattr(stalls, "now", lambda: time.time() + seconds)


def test_a_job_with_no_record_past_the_queue_s_life_reads_stalled_with_the_dead_letter_queue(
    deployed: tuple[Any, Any, S3Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    batch, control, store = deployed
    code, placed = job_call(control, "PUT", ROWS)  # no event follows: it was dead-lettered
    assert (code, placed["status"]) == (202, "pending"), placed
    assert "stalled" not in job_status(control)
    later(monkeypatch, stalls.DEAD_LETTER_AFTER_S - 60)  # the 5th delivery may still be running
    assert "stalled" not in job_status(control)
    later(monkeypatch, stalls.DEAD_LETTER_AFTER_S + 60)
    status = job_status(control)
    assert (status["status"], status["stalled"]) == ("pending", True), status
    assert status["hint"].startswith("no run of this upload has left a record in the 7.5 h ")
    for said in ("5400 s x 5 deliveries", "<stack>-batch-dlq", "BatchDeadLettersAlarm", "redrive"):
        assert said in status["hint"], status["hint"]
    # A sharded run's plan is a record: the state machine scores for as long as it takes.
    info = store.head(f"batch/iris/input/{NAME}")
    plan = f"batch/iris/work/{run_id(store.bucket, info.key, info.etag)}/plan.json"
    store.put_bytes(plan, b"[]")
    assert "stalled" not in job_status(control)
    store.delete(plan)
    # The message redriven from the dead-letter queue: scored, stalled no more.
    assert deliver(batch, store, 1) == {"batchItemFailures": []}
    status = job_status(control)
    assert (status["status"], status["scored_rows"]) == ("succeeded", 4)
    assert "stalled" not in status and "hint" not in status


def test_deployed_wait_stops_saying_the_run_is_stalled_not_at_its_timeout(
    deployed: tuple[Any, Any, S3Store],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, _, store = deployed
    data = tmp_path / "rows.csv"
    data.write_bytes(ROWS)
    pauses: list[float] = []

    def pause(seconds: float) -> None:  # an hour passes at each poll; no event ever comes
        pauses.append(seconds)
        assert len(pauses) < 20, "--wait waited on past the queue's life"
        later(monkeypatch, 3600.0 * len(pauses))

    monkeypatch.setattr(batch_wait, "pause", pause)
    uri = f"s3://{store.bucket}/registry"
    args = ["batch", "iris", str(data), "--deployed", "--wait", "--timeout", "86400"]
    code = main(["--store", uri, *args, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert len(pauses) == 8  # 8 h: past the 7.5 h a message can stay in the queue
    assert "is stalled: no run of this upload has left a record in the 8.0 h" in err, err
    assert "dead-letter queue <stack>-batch-dlq" in err, err


def test_the_queue_s_life_is_the_template_s() -> None:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: f"!{suffix}")
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)  # noqa: S506
    resources = template["Resources"]
    queue = resources["BatchQueue"]["Properties"]
    assert queue["VisibilityTimeout"] == stalls.VISIBILITY_TIMEOUT_S
    assert queue["RedrivePolicy"]["maxReceiveCount"] == stalls.MAX_RECEIVES
    assert resources["BatchFunction"]["Properties"]["Timeout"] == stalls.FUNCTION_TIMEOUT_S
