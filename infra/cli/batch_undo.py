"""What a local `aiaas batch` run that does not finish puts back: the store as it found it.

Its upload goes (no input sits unscored: the control plane would call its job pending for
ever), and so do its shard parts; the input of that name it replaced, kept aside meanwhile,
comes back (a failed re-run deleted it, leaving the earlier run's output and summary
describing an input that was gone). It comes back as a copy with the etag it had (the stores'
`copy` keeps it), so the earlier summary still matches it: the job reads as scored, and a
redelivery of it is skipped, not scored again."""

from __future__ import annotations

import logging
import secrets

from functions.runtime.batch.layout import BATCH_PREFIX, WORK_DIR, BatchObject
from functions.runtime.batch.run import RunInput, finished_summary
from functions.runtime.batch.work import remove_work
from functions.runtime.errors import AiaasError
from functions.runtime.store import ObjectStore

log = logging.getLogger("aiaas.batch")
PREVIOUS_DIR = "previous"  # under work/: the input a local run replaced, until it ends


def keep_aside(store: ObjectStore, obj: BatchObject) -> str:
    """Copy the input this run's upload replaces to the model's work folder (server-side on
    S3), to put back should the run not finish; the caller drops the copy once it ends. The
    copy's name is this run's own: two re-runs of one name at once each keep what they
    replaced (one folder for both made the second's copy, the first's upload, replace the
    first's, the original input)."""
    name = obj.input_key.split("/", 3)[3]
    kept = f"{BATCH_PREFIX}/{obj.model}/{WORK_DIR}/{PREVIOUS_DIR}/{secrets.token_hex(8)}/{name}"
    store.copy(obj.input_key, kept, keep_etag=True)
    return kept


def drop(store: ObjectStore, kept: str) -> None:
    try:
        store.delete(kept)
    except AiaasError as exc:  # the store is down: never mask how the run ended
        log.warning("left %s in the store: %s", kept, exc.message)


def discard(
    store: ObjectStore,
    obj: BatchObject,
    run: RunInput | None,
    uploaded: str | None,
    kept: str | None = None,
) -> bool:
    """A local run that ends without its finished summary leaves nothing of itself: its shard
    parts and the upload go (if still the version this command put), so no input sits unscored
    in the store (the control plane would call its job pending for ever) and the same command
    runs it again from the start. The input it replaced (`kept`) is put back. A run whose
    summary was committed keeps everything. True when `kept` could not be put back: the
    caller leaves it where it is, the only copy of that input (a warning says where).
    `uploaded` is the upload's etag: a copy of it (another re-run's put-back) is still ours."""
    if uploaded is None:  # the upload never landed (or replaced the same bytes): none of ours
        return False
    try:
        if run is not None:
            if finished_summary(store, run) is not None:
                return False
            remove_work(store, obj.work_prefix(run.run_id))
        version = store.version(obj.input_key)  # first: what the delete below compares
        if version is None or store.head(obj.input_key).etag != uploaded:  # a newer upload's
            return False
        store.delete(obj.input_key, if_version=version)
    except AiaasError as exc:  # replaced meanwhile, or the store is down: never mask the cause
        log.warning("left %s in the store: %s", obj.input_key, exc.message)
        return False
    if kept is None:
        log.info("removed %s: the run did not finish", obj.input_key)
        return False
    try:
        store.copy(kept, obj.input_key, keep_etag=True)
    except AiaasError as exc:
        log.warning("the earlier %s is at %s (not put back: %s)", obj.input_key, kept, exc.message)
        return True
    log.info("put the earlier %s back: the run did not finish", obj.input_key)
    return False


def landed(store: ObjectStore, obj: BatchObject, before: str | None) -> str | None:
    """The etag of the input this command's upload put there, when a stop came before the
    command read it: whatever is there now unless it is what was there before (or nothing)."""
    try:
        if store.version(obj.input_key) in (None, before):
            return None
        return store.head(obj.input_key).etag
    except AiaasError:
        return None
