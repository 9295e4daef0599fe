"""A sharded run's work folder (`batch/<model>/work/<run id>/`): removed once the run is over.

The merge removes it after the summary (the commit point), and a removal that fails then does
not fail the run: the run is finished and its parts are garbage. What is left is removed by
the next thing that touches the run (the state machine retrying the merge, a re-delivered
message, a re-planned execution), and by the next sharded run of the same model, which sweeps
the work folders of runs that are over (`shards.sweep_work`).
"""

from __future__ import annotations

import logging

from functions.runtime.errors import AiaasError
from functions.runtime.store import ObjectStore

log = logging.getLogger("aiaas.batch")

PLAN_FILE = "plan.json"


def remove_work(store: ObjectStore, prefix: str) -> bool:
    """Delete every object under `prefix`, the plan last (a folder half removed still says
    whose it is); False, with a warning logged, when the store refused."""
    try:
        keys = list(store.list_keys(prefix))
        plans = [key for key in keys if key.endswith(f"/{PLAN_FILE}")]
        # A request per 1,000 keys on S3 (a 400-shard run's folder was 400+ requests in a row)
        store.delete_many([key for key in keys if key not in plans])
        store.delete_many(plans)
    except AiaasError as exc:
        log.warning("could not remove %s (a later run removes it): %s", prefix, exc.message)
        return False
    return True
