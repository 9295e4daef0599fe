"""A deployed job pending for longer than its queue message can be in flight.

S3's event for an input reaches the batch function through EventBridge and the batch queue.
Two ways it never does leave no record a run could write (hunt_batch2, left): EventBridge
cannot deliver the event to the queue (it lands in the dead-letter queue), or the function
times out on every delivery (the queue moves the message there after its last). No message is
in flight longer than the queue's visibility timeout times its deliveries (7.5 h) without a
delivery that ran to an end or the dead-letter queue. That bound does not count the time a
message waits unreceived: behind a backlog (the event source mapping's MaximumConcurrency) it
waits up to the queue's retention, 4 days (review_rev4 3). So past 7.5 h the queues are asked
(sqs:GetQueueAttributes of the two the stack's ControlPlane names): messages in the batch
queue are a backlog to wait for, messages in the dead-letter queue a stall, neither an event
that never arrived. Where they cannot be read, that is said, and no re-upload is advised: it
would score the rows twice once the queued message's run comes.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from functions.runtime.batch.settings import DEAD_LETTER_URL_ENV, QUEUE_URL_ENV, queue_urls

# template.yaml's BatchQueue (tests/functions/test_batch_stalled_jobs.py holds them equal):
MAX_RECEIVES = 5  # RedrivePolicy maxReceiveCount: the 5th failing delivery is the last
VISIBILITY_TIMEOUT_S = 5400  # VisibilityTimeout: a delivery's message is hidden that long
DEAD_LETTER_AFTER_S = MAX_RECEIVES * VISIBILITY_TIMEOUT_S  # 27,000 s: 7.5 h
RETENTION_S = 345600  # MessageRetentionPeriod: 4 days a message may wait to be received
FUNCTION_TIMEOUT_S = 900  # BatchFunction's Timeout
READ_AGAIN_S = 10.0  # a job list's page of old pending jobs asks the queues once, not each

QUEUED, DEAD_LETTERED, NOT_ARRIVED, UNKNOWN = "batch_queue", "dead_letter_queue", "none", "unknown"
STOPS = (DEAD_LETTERED, NOT_ARRIVED)  # no run comes without someone acting: `--wait` stops


def now() -> float:
    """Seconds since the epoch (a test moves the clock on here)."""
    return time.time()


@dataclass(frozen=True)
class Depths:
    """The queues as SQS counts them (approximately): the batch queue's messages waiting and
    in flight, and the dead-letter queue's."""

    waiting: int
    in_flight: int
    dead_letters: int


class Queues:
    """Reads the two queues' depths, at most once each READ_AGAIN_S; the reason when it cannot
    (no URL set, as in a stack deployed before they were, or the call refused)."""

    def __init__(self) -> None:
        self._read: tuple[float, Depths | str] | None = None

    def depths(self) -> Depths | str:
        if self._read is None or time.monotonic() - self._read[0] > READ_AGAIN_S:
            self._read = (time.monotonic(), read_depths())
        return self._read[1]


def read_depths() -> Depths | str:
    queue, dead = queue_urls()
    if not queue or not dead:
        return f"{QUEUE_URL_ENV} and {DEAD_LETTER_URL_ENV} are not both set"
    import boto3  # only here: ~400 ms, and only for a job pending past 7.5 h
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    # Short: the job's answer waits on it, within the control plane's 30 s
    quick = Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2})
    try:
        client: Any = boto3.client("sqs", region_name=_region(queue), config=quick)
        counts = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        got = client.get_queue_attributes(QueueUrl=queue, AttributeNames=counts)["Attributes"]
        dlq = client.get_queue_attributes(QueueUrl=dead, AttributeNames=counts[:1])["Attributes"]
        return Depths(int(got[counts[0]]), int(got[counts[1]]), int(dlq[counts[0]]))
    except (BotoCoreError, ClientError, KeyError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


def _region(url: str) -> str | None:
    """The region a queue URL names (`https://sqs.eu-west-1.amazonaws.com/...`): the caller's
    default may be another."""
    found = re.match(r"https://sqs\.([a-z0-9-]+)\.amazonaws\.com", url)
    return found.group(1) if found else None


@dataclass(frozen=True)
class Stall:
    """Where a job pending past 7.5 h with no record of its run is held, and what to do."""

    held: str  # QUEUED, DEAD_LETTERED, NOT_ARRIVED or UNKNOWN
    hint: str
    depths: Depths | None = None

    @property
    def stalled(self) -> bool:
        """No run is known to be coming (the queues unread: it may be, the hint says)."""
        return self.held != QUEUED

    def fields(self) -> dict[str, Any]:
        """What the job API adds to the pending job."""
        said: dict[str, Any] = {"stalled": self.stalled, "held": self.held, "hint": self.hint}
        if self.depths is not None:
            said["queue_depth"] = self.depths.waiting + self.depths.in_flight
            said["dead_letters"] = self.depths.dead_letters
        return said

    def state(self) -> str:
        """One line for `--wait`'s progress."""
        if self.depths is not None and self.held == QUEUED:
            waiting, flying = self.depths.waiting, self.depths.in_flight
            return f"queued: the batch queue holds {waiting} waiting, {flying} being scored"
        return f"pending, no record of its run, its queue message: {self.held}"


def stall(uploaded: float, queues: Queues) -> Stall | None:
    """What holds a job whose input was uploaded at `uploaded` (seconds since the epoch; 0
    where the store does not say) and whose run left no record: None while its message may
    still be in flight. Ask it before reading the record: a run that ends in between leaves
    one, where the other order read its message gone and no record."""
    waited = now() - uploaded
    if not uploaded or waited <= DEAD_LETTER_AFTER_S:
        return None
    since = (
        f"no run of this upload has left a record in the {waited / 3600:.1f} h since it was "
        f"uploaded, longer than its queue message can be in flight (visibility timeout "
        f"{VISIBILITY_TIMEOUT_S} s x {MAX_RECEIVES} deliveries)"
    )
    dlq = (
        "the dead-letter queue <stack>-batch-dlq (the stack's output BatchDeadLetterQueueUrl; "
        "the BatchDeadLettersAlarm fires)"
    )
    causes = (
        "EventBridge having failed to deliver the event to the batch queue (it retries for up "
        f"to 24 h) or BatchFunction having timed out ({FUNCTION_TIMEOUT_S} s) on each delivery"
    )
    found = queues.depths()
    if isinstance(found, str):
        return Stall(
            UNKNOWN,
            f"{since}; the batch queues could not be read ({found}), so where its message is "
            "is not known: it may still wait its turn in the batch queue <stack>-batch-input "
            f"behind a backlog (up to its retention, {RETENTION_S // 86400} days), or be in "
            f"{dlq}, {causes}. Look at the two queues' depths; if it is in the dead-letter "
            "queue, see BatchFunction's log for why, fix the cause, then redrive it",
        )
    if found.waiting + found.in_flight:
        also = f"; the dead-letter queue holds {found.dead_letters}" if found.dead_letters else ""
        return Stall(
            QUEUED,
            f"{since}, but the batch queue <stack>-batch-input holds {found.waiting} message(s) "
            f"waiting and {found.in_flight} being scored: its message may wait its turn behind "
            f"a backlog (BatchQueueConcurrency runs at once; a message waits up to "
            f"{RETENTION_S // 86400} days){also}. Nothing to do but wait",
            found,
        )
    if found.dead_letters:
        return Stall(
            DEAD_LETTERED,
            f"{since}; the batch queue is empty and {dlq} holds {found.dead_letters} "
            f"message(s), this upload's likely among them, {causes}; see BatchFunction's log "
            "for why, fix the cause, then redrive the dead-letter queue's messages",
            found,
        )
    return Stall(
        NOT_ARRIVED,
        f"{since}; neither the batch queue nor {dlq} holds a message: the upload's event never "
        "arrived (one the rule did not match never comes; EventBridge retries one it could not "
        "deliver for up to 24 h). Check that the bucket sends its events to EventBridge "
        "(EventBridgeConfiguration), that the stack's BatchInputRule is enabled and matches "
        "the key (registry/batch/<model>/input/<file>), and the rule's FailedInvocations "
        "metric; once fixed, upload the file again (no message of it is left to score its "
        "rows twice)",
        found,
    )
