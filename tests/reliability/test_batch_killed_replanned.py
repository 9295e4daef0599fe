"""A sharded run SIGKILLed after its shards finished, before the merge, leaves its parts under
`work/<run id>/`; on S3 the same bytes uploaded again have the same ETag, hence the same run id.
The re-run plans again, with other `--shards`, or after the alias moved: it must score its own
plan, never merge the killed plan's parts (they had duplicated a third of a 300,000-row file,
399,676 rows written for 300,000 with `succeeded`, or held another version's answers).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.batch.layout import parse_input_key
from functions.runtime.batch.run import RunInput
from functions.runtime.batch.shards import merge_run, plan_run, score_shard
from functions.runtime.errors import AiaasError
from functions.runtime.registry import Registry
from functions.runtime.store import ObjectStore
from tests import onnx_factory
from tests.batch_support import (
    LABELS,
    features_csv,
    pool,
    publish_classifier,
    read_csv,
    reference_logits,
    run_settings,
)

KEY = "batch/iris/input/night.csv"
OUT = "batch/iris/output/night.csv"
ROWS = 600


def sharded_run(store: ObjectStore, workdir: Path, shards: int, *, merge: bool) -> dict:
    """Plan and score every shard (the killed run when not `merge`), then merge."""
    obj = parse_input_key(KEY)
    assert obj is not None
    models = pool(store, workdir)
    plan = plan_run(store, models, RunInput(obj, "b", store.head(KEY)), shards, run_settings(16))
    assert plan["status"] == "planned"
    for item in json.loads(store.get_bytes(plan["plan_key"])):
        score_shard(store, models, item, run_settings())
    return merge_run(store, plan) if merge else dict(plan)


def night(store: ObjectStore, tmp_path: Path) -> np.ndarray:
    x = np.random.default_rng(5).normal(size=(ROWS, 4)).astype(np.float32)
    store.put_bytes(KEY, features_csv(x).encode())
    return x


def test_a_rerun_with_other_shards_writes_each_row_once(s3_store, tmp_path):
    publish_classifier(s3_store, tmp_path)
    x = night(s3_store, tmp_path)
    killed = sharded_run(s3_store, tmp_path, 2, merge=False)
    s3_store.put_bytes(KEY, s3_store.get_bytes(KEY))  # the same bytes again: the same ETag
    summary = sharded_run(s3_store, tmp_path, 3, merge=True)
    assert summary["run_id"] == killed["run_id"]
    rows = read_csv(s3_store, OUT)
    assert (summary["status"], summary["rows"], summary["scored_rows"]) == ("succeeded", ROWS, ROWS)
    assert [row["id"] for row in rows] == [f"r{i}" for i in range(ROWS)]
    best = reference_logits(tmp_path, x).argmax(axis=1)
    assert [row["pred_label"] for row in rows] == [LABELS[i] for i in best]


def test_a_rerun_after_the_alias_moved_scores_every_row_with_its_version(s3_store, tmp_path):
    publish_classifier(s3_store, tmp_path)
    x = night(s3_store, tmp_path)
    sharded_run(s3_store, tmp_path, 2, merge=False)  # scored by iris:1, killed before merging
    path = onnx_factory.linear_classifier(tmp_path / "iris2.onnx", seed=9)
    Registry(s3_store).publish(onnx_factory.manifest_for(path, "iris", "2", labels=LABELS), path)
    summary = sharded_run(s3_store, tmp_path, 2, merge=True)
    assert (summary["status"], summary["version"], summary["rows"]) == ("succeeded", "2", ROWS)
    best = reference_logits(tmp_path, x, "iris2").argmax(axis=1)
    assert best.tolist() != reference_logits(tmp_path, x).argmax(axis=1).tolist()
    assert [row["pred_label"] for row in read_csv(s3_store, OUT)] == [LABELS[i] for i in best]


def test_a_plan_overtaken_by_a_rerun_of_its_bytes_publishes_nothing(s3_store, tmp_path):
    """The killed run's merge (a state machine retrying it) after the re-run planned again:
    the parts are no longer its plan's, so it refuses, where it merged them as its own."""
    publish_classifier(s3_store, tmp_path)
    night(s3_store, tmp_path)
    killed = sharded_run(s3_store, tmp_path, 2, merge=False)
    sharded_run(s3_store, tmp_path, 3, merge=False)  # the re-run, not merged yet
    with pytest.raises(AiaasError, match="parts of another plan"):
        merge_run(s3_store, killed)
    assert not s3_store.exists(OUT)
    assert not s3_store.exists(f"{OUT}.summary.json")
