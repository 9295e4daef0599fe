"""A run that fails without scoring (the input cannot be read, or a sharded run's catch-all)
leaves no output or errors of an older run of the same input beside its failed summary: a
finished summary vouches for the objects it names. Through the handler with the SQS-wrapped
S3 notifications the queue delivers, on the directory store and on S3 (moto's server).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.batch.handler import dispatch
from functions.runtime.batch.layout import parse_input_key
from functions.runtime.batch.run import RunInput
from functions.runtime.batch.shards import plan_run
from functions.runtime.store import ObjectStore
from tests.batch_support import (
    features_csv,
    pool,
    publish_classifier,
    run_settings,
    service,
    sqs_for,
)

KEY, OUT = "batch/iris/input/a.csv", "batch/iris/output/a.csv"
ERRORS, SUMMARY = f"{OUT}.errors.jsonl", f"{OUT}.summary.json"
ROWS = features_csv(np.ones((3, 4))).replace("r1,1.0", "r1,x", 1).encode()  # one bad row


@pytest.fixture
def scored(store: ObjectStore, tmp_path: Path) -> ObjectStore:
    """a.csv scored once: its output and its (one line) errors are in place."""
    publish_classifier(store, tmp_path)
    store.put_bytes(KEY, ROWS)
    assert dispatch(service(store, tmp_path), sqs_for(store, KEY)) == {"batchItemFailures": []}
    assert store.exists(OUT) and store.get_bytes(ERRORS)
    return store


def summary(store: ObjectStore) -> dict:
    return json.loads(store.get_bytes(SUMMARY))


@pytest.mark.parametrize(
    ("new", "error"),
    [(b"", "is empty"), (b"id,a,b\n1,2,3\n", "x_0"), (b"\x1f\x8b\x08junk", "gzip")],
    ids=["empty", "wrong-columns", "gzip-under-a-plain-name"],
)
def test_an_unreadable_new_version_leaves_no_older_output_beside_its_summary(
    scored: ObjectStore, tmp_path: Path, new: bytes, error: str
) -> None:
    keys = set(summary(scored))  # a scored run's
    scored.put_bytes(KEY, new)
    assert dispatch(service(scored, tmp_path), sqs_for(scored, KEY)) == {"batchItemFailures": []}
    failed = summary(scored)
    assert (failed["status"], failed["etag"]) == ("failed", scored.head(KEY).etag)
    assert error in failed["error"]
    # The keys of any finished run (a script read `timings` and `shards` and met a KeyError).
    assert set(failed) == keys | {"error"}
    assert (failed["rows"], failed["rows_per_second"], failed["shards"]) == (0, None, 1)
    assert failed["timings"]["total_s"] >= 0 and failed["chunk_rows"] == run_settings().chunk_rows
    assert not scored.exists(OUT) and not scored.exists(ERRORS)


def test_a_failed_sharded_run_leaves_no_older_output_beside_its_summary(
    scored: ObjectStore, tmp_path: Path
) -> None:
    keys = set(summary(scored))
    scored.put_bytes(KEY, ROWS + b"r9,1,1,1,1\n")
    obj = parse_input_key(KEY)
    assert obj is not None
    bucket = json.loads(scored.get_bytes(SUMMARY))["bucket"]
    run = RunInput(obj, bucket, scored.head(KEY))
    plan = plan_run(scored, pool(scored, tmp_path), run, 2, run_settings())
    error = {"Error": "States.Timeout", "Cause": "shard 1 timed out"}
    answer = dispatch(
        service(scored, tmp_path), {"aiaas_batch": "fail", "plan": plan, "error": error}
    )
    assert answer["status"] == summary(scored)["status"] == "failed"
    assert set(summary(scored)) == keys | {"error"} and summary(scored)["shards"] == 2
    assert not scored.exists(OUT) and not scored.exists(ERRORS)
    assert list(scored.list_keys(plan["work"])) == []
