"""Two inputs whose outputs would share a key: neither silently takes the other's output.

`rows.csv.gz` is scored into the plain `rows.csv`, and `a.NPY` into `a.npz` like `a.npy`. Both
arrived in one SQS batch (or one after the other), the later run overwrote the earlier one's
output while the earlier summary still said "succeeded" for it: rows.csv's summary vouched for
rows.csv.gz's scores. Runs on the directory store and on S3 (moto's server), through the
handler with the SQS-wrapped S3 notifications the queue delivers.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from functions.batch.handler import dispatch
from functions.runtime.store import ObjectStore
from tests.batch_support import features_csv, publish_classifier, read_csv, service, sqs_for

IN, OUT = "batch/iris/input", "batch/iris/output"


@pytest.fixture
def published(store: ObjectStore, tmp_path: Path) -> ObjectStore:
    publish_classifier(store, tmp_path)
    return store


def summary(store: ObjectStore, name: str) -> dict:
    return json.loads(store.get_bytes(f"{OUT}/{name}.summary.json"))


def test_a_plain_and_a_gzip_input_in_one_batch_both_fail_naming_each_other(published, tmp_path):
    plain, packed = np.full((2, 4), 1.0), np.full((3, 4), 9.0)
    published.put_bytes(f"{IN}/rows.csv", features_csv(plain).encode())
    published.put_bytes(f"{IN}/rows.csv.gz", gzip.compress(features_csv(packed).encode()))
    event = sqs_for(published, f"{IN}/rows.csv", f"{IN}/rows.csv.gz")
    assert dispatch(service(published, tmp_path), event) == {"batchItemFailures": []}
    # Neither can know which the user meant to own rows.csv: both fail (final, with a summary
    # each) and nothing is written where the other's scores could be mistaken for its own.
    for name, other in (("rows.csv", "rows.csv.gz"), ("rows.csv.gz", "rows.csv")):
        found = summary(published, name)
        assert found["status"] == "failed"
        assert f"{IN}/{other}" in found["error"] and f"{OUT}/rows.csv" in found["error"]
        assert "rename" in found["error"]
    assert not published.exists(f"{OUT}/rows.csv")


def test_a_gzip_twin_of_a_scored_input_fails_and_leaves_its_output(published, tmp_path):
    plain, packed = np.full((2, 4), 1.0), np.full((3, 4), 9.0)
    published.put_bytes(f"{IN}/rows.csv", features_csv(plain).encode())
    service_ = service(published, tmp_path)
    assert dispatch(service_, sqs_for(published, f"{IN}/rows.csv")) == {"batchItemFailures": []}
    published.put_bytes(f"{IN}/rows.csv.gz", gzip.compress(features_csv(packed).encode()))
    assert dispatch(service_, sqs_for(published, f"{IN}/rows.csv.gz")) == {"batchItemFailures": []}
    assert summary(published, "rows.csv")["status"] == "succeeded"
    assert summary(published, "rows.csv.gz")["status"] == "failed"
    rows = read_csv(published, f"{OUT}/rows.csv")
    assert [r["x_0"] for r in rows] == ["1.0", "1.0"]  # rows.csv's own rows, not the twin's


def test_the_later_of_two_npy_spellings_fails_and_the_first_output_stays(published, tmp_path):
    np_bytes = {}
    for name, value in (("a.npy", 1.0), ("a.NPY", 9.0)):
        path = tmp_path / name.replace(".", "_")
        np.save(path, np.full((2, 4), value, dtype=np.float32))
        np_bytes[name] = path.with_suffix(".npy").read_bytes()
    published.put_bytes(f"{IN}/a.npy", np_bytes["a.npy"])
    event = sqs_for(published, f"{IN}/a.npy")
    assert dispatch(service(published, tmp_path), event) == {"batchItemFailures": []}
    before = published.get_bytes(f"{OUT}/a.npz")
    published.put_bytes(f"{IN}/a.NPY", np_bytes["a.NPY"])
    event = sqs_for(published, f"{IN}/a.NPY")
    assert dispatch(service(published, tmp_path), event) == {"batchItemFailures": []}
    assert summary(published, "a.NPY")["status"] == "failed"
    assert published.get_bytes(f"{OUT}/a.npz") == before
