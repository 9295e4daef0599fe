"""Copies held on the caller's side so that several go out in one message (one `sendmsg`,
one wake-up of the replay process) instead of one each.

Measured per copy (an MLP request's 1.6 KB line, a live replay process, `ShadowTap.offer`
timed in the real service, 3 runs): 2.8-3.0 us to sample and build the line; with one `send`
per copy 6.6-6.9 us in all (p99 13 us); in batches of 8, 4.1-4.4 us (p99 16-17 us: the request
that sends a batch pays ~12 us). Batches of 32 cut the p50 no further and put that request in
the p99 (27 us); sending only from the results thread every 2 ms was worse (p99 33 us: it
competes for the GIL); a replay process that polls, so that a send never wakes it, saved
~0.2 us. The rule, like the EMF flush's
(functions/predict/telemetry.py): a copy after a pause of BATCH_S goes at once (a lone
request's copy is never held); in a burst, copies are held until BATCH_COPIES, BATCH_BYTES or
BATCH_S old, then sent together from the request that made the batch due. What a burst leaves
held is sent by the channel's results thread within TICK_S (functions/shadow/channel.py).
"""

from __future__ import annotations

from functions.predict.shadow_copy import MAX_COPY_BYTES
from functions.predict.shadow_tally import ShadowLabels

BATCH_COPIES = 8
BATCH_BYTES = 64 * 1024
BATCH_S = 0.005
TICK_S = 0.05  # the results thread's look at held copies while copies flow
ACTIVE_S = 1.0  # ... for this long after the last copy, then it sleeps until a result comes
MAX_MESSAGE = BATCH_BYTES + MAX_COPY_BYTES  # a batch is sent once it reaches BATCH_BYTES


class CopyBatch:
    """The lines held for the next message and how many copies each version pair has in it.
    Not thread-safe: the channel holds its lock around every call."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.counts: dict[ShadowLabels, int] = {}
        self.size = 0
        self.since = 0.0  # clock at the first held line
        self.last_added = -1e18

    def add(self, labels: ShadowLabels, line: bytes, now: float) -> bool:
        """Hold `line`; True when the batch is due (send it now, with `take`)."""
        if not self.lines:
            self.since = now
        self.lines.append(line)
        self.counts[labels] = self.counts.get(labels, 0) + 1
        self.size += len(line)
        after_pause = now - self.last_added >= BATCH_S
        self.last_added = now
        return (
            after_pause
            or len(self.lines) >= BATCH_COPIES
            or self.size >= BATCH_BYTES
            or now - self.since >= BATCH_S
        )

    def due(self, now: float) -> bool:
        """Held lines older than BATCH_S (the results thread's check)."""
        return bool(self.lines) and now - self.since >= BATCH_S

    def active(self, now: float) -> bool:
        """Copies held, or flowing lately: the results thread keeps looking."""
        return bool(self.lines) or now - self.last_added < ACTIVE_S

    def take(self) -> tuple[list[bytes], dict[ShadowLabels, int]]:
        """The held lines and their counts per version pair; the batch starts empty."""
        lines, counts = self.lines, self.counts
        self.lines, self.counts, self.size = [], {}, 0
        return lines, counts
