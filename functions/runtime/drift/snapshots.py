"""Where the drift monitor's snapshots go, and their writing: one key per flush of a version
(`monitoring/<model>/<version>/<YYYY-MM-DD>/<HHMMSS>-<id>.json`, UTC, dated by its last row),
and one warning a store outage, not one an interval for each version (monitor.py flushes)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import orjson

from functions.runtime.errors import AiaasError
from functions.runtime.store import ObjectStore

log = logging.getLogger("aiaas.drift")  # under `aiaas`: JSON lines as the function's others
PREFIX = "monitoring"


def snapshot_prefix(model: str, version: str) -> str:
    return f"{PREFIX}/{model}/{version}"


def snapshot_key(model: str, version: str, end: float) -> str:
    """A new snapshot's key, dated by `end` (wall time of its last row): what a window reads."""
    stamp = datetime.fromtimestamp(end, UTC)
    return (
        f"{snapshot_prefix(model, version)}/{stamp:%Y-%m-%d}/"
        f"{stamp:%H%M%S}-{uuid.uuid4().hex[:8]}.json"
    )


class SnapshotWriter:
    """Writes snapshots; a failed write is logged (once an outage) and dropped, never raised."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._dropped = 0  # flushes whose counts could not be written since the last written

    def write(self, model: str, version: str, doc: dict[str, object], end: float) -> None:
        try:
            self.store.put_bytes(snapshot_key(model, version, end), orjson.dumps(doc))
        except (AiaasError, OSError) as exc:
            self._not_written(f"{model}:{version}", exc)
            return
        if self._dropped:
            log.info("drift counts written again; %d snapshots dropped meanwhile", self._dropped)
            self._dropped = 0

    def _not_written(self, ref: str, exc: Exception) -> None:
        """One line a store outage, not one an interval for each version."""
        if not self._dropped:
            log.warning(
                "drift counts of %s not written: %s (said once until a write succeeds; counts "
                "are dropped meanwhile)",
                ref,
                exc,
            )
        self._dropped += 1
