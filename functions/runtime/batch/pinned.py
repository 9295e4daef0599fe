"""The versions sharded batch runs still in flight pinned: a prune keeps them.

A sharded run (the stack's Distributed Map for a big input, `aiaas batch --shards N`) pins the
model's version when it plans (`work/<run id>/plan.json`), and each shard loads that version by
number, maybe an hour later in the stack. A prune in between (two promotes and `--keep 1`, a
CI's nightly tidy-up) deleted it: every shard not yet loaded failed, and the run with it.
In flight: its plan is there, no finished summary names the run, and its input is still the
version it planned (a replaced or deleted input's run can never publish). A store that cannot
be read raises, so the prune stops, as for an alias record it cannot read.
"""

from __future__ import annotations

import json

from functions.runtime.batch.layout import BATCH_PREFIX, WORK_DIR, parse_input_key
from functions.runtime.batch.status import FINISHED
from functions.runtime.batch.work import PLAN_FILE
from functions.runtime.errors import NotFound
from functions.runtime.store import ObjectStore


def pinned_versions(store: ObjectStore, model: str) -> dict[str, list[str]]:
    """Version -> the run ids of `model`'s sharded runs in flight that pinned it."""
    base = f"{BATCH_PREFIX}/{model}/{WORK_DIR}"
    pinned: dict[str, list[str]] = {}
    for name in store.list_dirs(base):
        try:
            plan = json.loads(store.get_bytes(f"{base}/{name}/{PLAN_FILE}"))[0]
            run_id, version = str(plan["run_id"]), str(plan["version"])
            obj = parse_input_key(str(plan["input"]))
        except (NotFound, ValueError, LookupError, TypeError):
            continue  # no plan (work/previous/, a folder half removed): pins nothing
        if obj is None or _finished(store, obj.summary_key, run_id):
            continue
        try:
            if store.head(obj.input_key).etag != plan["etag"]:
                continue
        except NotFound:
            continue
        pinned.setdefault(version, []).append(run_id)
    return pinned


def _finished(store: ObjectStore, summary_key: str, run_id: str) -> bool:
    try:
        summary = json.loads(store.get_bytes(summary_key))
    except (NotFound, ValueError):
        return False
    # A dead-lettered run's redrive plans afresh, pinning the version served then.
    return summary.get("run_id") == run_id and summary.get("status") in FINISHED
