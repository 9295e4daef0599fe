"""A prune keeps the version a sharded batch run in flight pinned (hunt_journey5 1).

A sharded run pins the version at planning and each shard loads it by number, in the stack
maybe an hour later. Two promotes and `prune --keep 1` in between deleted it: every shard not
yet loaded failed, and the run failed for good, its summary telling the user to "point the
deployment at an alias". Now the prune keeps it, naming the run, and lets it go once the run
is over; a version gone anyway (a prune that did not see the run) fails the run saying how to
score the input again. On the directory store and on moto's S3 server, with the real plan,
shard and merge steps and the real prune.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from functions.batch.events import store_location
from functions.runtime.batch.layout import parse_input_key
from functions.runtime.batch.run import RunInput
from functions.runtime.batch.shards import fail_run, merge_run, plan_run, score_shard
from functions.runtime.errors import AiaasError
from functions.runtime.pruning import carry_out, plan_prune
from functions.runtime.registry import Registry
from functions.runtime.store import ObjectStore
from tests.batch_support import features_csv, pool, run_settings
from tests.publishing import publish_linear

KEY = "batch/m/input/night.csv"


def planned(store: ObjectStore, tmp_path: Path) -> tuple[dict, list[dict]]:
    """Versions 1-3 of `m` with production at 1, and a 2-shard run of a CSV planned (pins 1),
    then production moved to 2 and 3: only the run still needs 1."""
    registry = Registry(store)
    for version in ("1", "2", "3"):
        publish_linear(registry, tmp_path, "m", version, seed=int(version))
    registry.set_alias("m", "production", "1", actor="ci")
    x = np.random.default_rng(5).normal(size=(40, 4))
    store.put_bytes(KEY, features_csv(x).encode())
    obj = parse_input_key(KEY)
    assert obj is not None
    run = RunInput(obj, store_location(store)[0], store.head(KEY))
    plan = plan_run(store, pool(store, tmp_path), run, 2, run_settings(8))
    assert plan["version"] == "1"
    registry.set_alias("m", "production", "2", actor="ci")
    registry.set_alias("m", "production", "3", actor="ci")  # a rollback goes to 2
    return dict(plan), json.loads(store.get_bytes(plan["plan_key"]))


def test_a_prune_keeps_the_version_a_sharded_run_in_flight_pinned(
    store: ObjectStore, tmp_path: Path
) -> None:
    plan, items = planned(store, tmp_path)
    registry = Registry(store)
    prune = plan_prune(registry, "m", keep=1)
    assert [doomed.version for doomed in prune.delete] == []
    assert prune.kept["1"] == [f"pinned by sharded batch run {plan['run_id']} in flight"]
    carry_out(registry, prune, "ci")
    models = pool(store, tmp_path / "fresh")  # a shard's own container: nothing loaded yet
    for item in items:
        score_shard(store, models, item, run_settings())
    summary = merge_run(store, plan)
    assert (summary["status"], summary["version"], summary["scored_rows"]) == ("succeeded", "1", 40)
    # The run is over: 1 is no one's any more.
    assert [doomed.version for doomed in plan_prune(registry, "m", keep=1).delete] == ["1"]


def test_a_pinned_version_deleted_anyway_fails_the_run_saying_how_to_score_again(
    store: ObjectStore, tmp_path: Path
) -> None:
    plan, items = planned(store, tmp_path)
    registry = Registry(store)
    # What a prune that did not see the run (one before this fix, or racing the plan) does.
    store.delete(plan["plan_key"])
    carry_out(registry, plan_prune(registry, "m", keep=1), "ci")
    store.put_bytes(plan["plan_key"], json.dumps(items).encode())
    try:
        score_shard(store, pool(store, tmp_path / "fresh"), items[0], run_settings())
    except AiaasError as exc:
        error = exc
    else:
        raise AssertionError("the shard scored a deleted version")
    assert error.status == 404  # final: retrying cannot bring the version back
    summary = fail_run(store, plan, error.message)
    assert summary["status"] == "failed"
    assert str(summary["error"]).startswith(
        "m:1, the version this sharded run pinned when it was planned, was deleted while the "
        "run scored (`aiaas versions m` shows the prune); score the input again under another "
        "name, e.g. `aiaas batch m FILE --name NEW`"
    )
    assert "point the deployment" not in str(summary["error"])
