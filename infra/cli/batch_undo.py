"""What a local `aiaas batch` run that does not finish puts back: the store as it found it.

Its upload goes (no input sits unscored: the control plane would call its job pending for
ever), and so do its shard parts; the input of that name it replaced, kept aside meanwhile,
comes back (a failed re-run deleted it, leaving the earlier run's output and summary
describing an input that was gone). It comes back as a copy with the etag it had (the stores'
`copy` keeps it), so the earlier summary still matches it: the job reads as scored, and a
redelivery of it is skipped, not scored again.

A run SIGKILLed (an OOM kill) while it scores cannot drop its copy: the next run of that name
removes the copies whose owner is provably gone and that equal the input in place (nothing is
lost), and names the others in a warning (`leftovers`)."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from pathlib import Path

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
    token = f"{_MACHINE or 'unknown'}-{os.getpid()}-{secrets.token_hex(8)}"  # owner: `_owner`
    kept = f"{_previous(obj)}/{token}/{_name(obj)}"
    store.copy(obj.input_key, kept, keep_etag=True)
    return kept


def leftovers(store: ObjectStore, obj: BatchObject) -> None:
    """Before a run of `obj`'s name: the copies of that name earlier re-runs kept aside and never
    dropped (SIGKILLed: each left its own, an input-sized copy per kill). One whose owner is
    provably gone and that equals (its etag) the input in place or another such copy kept is a
    pure duplicate and goes; one a live run owns is left unsaid; any other is named, to move
    back or delete. (A live run's copy equals the input in place until its upload lands: only a
    gone owner's goes.) Housekeeping: a store error is a warning, never why a run fails."""
    base, name = _previous(obj), _name(obj)
    try:
        listed = (k[len(base) + 1 :] for k in store.list_keys(base) if k.startswith(f"{base}/"))
        tokens = (k.partition("/") for k in listed)
        kept = {f"{base}/{token}/{name}": token for token, _, rest in tokens if rest == name}
        there = kept and store.exists(obj.input_key)
        seen = {store.head(obj.input_key).etag} if there else set()  # stays: a copy of it can go
        uri = store.uri.rstrip("/")
        for key, token in kept.items():
            owner = _owner(token)
            if owner == "gone" and (etag := store.head(key).etag) in seen:
                store.delete(key)
                log.info("removed %s: a killed re-run's copy of an input still there", key)
                continue
            if owner == "gone":
                seen.add(etag)
            if owner != "live":
                log.warning(
                    "%s/%s is an earlier %s a re-run kept aside and did not put back (killed%s): "
                    "move it back to %s/%s to restore that input, or delete it",
                    *(uri, key, name, "" if owner == "gone" else ", or still running elsewhere"),
                    *(uri, obj.input_key),
                )
    except AiaasError as exc:
        log.warning("could not look for what killed re-runs kept under %s: %s", base, exc.message)


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


def _previous(obj: BatchObject) -> str:
    return f"{BATCH_PREFIX}/{obj.model}/{WORK_DIR}/{PREVIOUS_DIR}"


def _name(obj: BatchObject) -> str:
    return obj.input_key.split("/", 3)[3]


def _machine() -> str | None:
    """This kernel's boot and this process's pid namespace: where a pid names one process (a
    container beside it, another machine or a reboot name others). None off Linux (no /proc):
    its copies' owners cannot be told gone, so none is ever removed."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        where = boot + str(Path("/proc/self/ns/pid").readlink())
    except OSError:
        return None
    return hashlib.sha256(where.encode()).hexdigest()[:12]


_MACHINE = _machine()


def _owner(token: str) -> str:
    """Whether the run that made a copy (`keep_aside`'s token) is "live" or provably "gone"
    (it ran here and its pid names no process), or "unknown" (another machine, a container
    beside this one, before a reboot, or before tokens named their owner). A reused pid reads
    as live: the copy stays, the safe way."""
    machine, _, rest = token.partition("-")
    pid = rest.partition("-")[0]
    if not (_MACHINE and machine == _MACHINE and pid.isdecimal()):
        return "unknown"
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return "gone"
    except (OSError, OverflowError):  # another user's process (alive), or no pid at all
        return "unknown"
    return "live"
