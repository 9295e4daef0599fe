"""A deployed job pending for longer than its queue message can stay in the batch queue.

S3's event for an input reaches the batch function through EventBridge and the batch queue.
Two ways it never does leave no record a run could write (hunt_batch2, left): EventBridge
cannot deliver the event to the queue (it lands in the dead-letter queue), or the function
times out on every delivery (the queue moves the message there after its last). The job API
and `aiaas batch --deployed --wait` read `pending` for good. No message outlives the queue's
visibility timeout times its deliveries without a delivery that ran to an end or the
dead-letter queue, so a job with no record of its run past that is stalled: said, with where
to look, rather than waited on.
"""

from __future__ import annotations

import time

# template.yaml's BatchQueue (tests/functions/test_batch_stalled_jobs.py holds them equal):
MAX_RECEIVES = 5  # RedrivePolicy maxReceiveCount: the 5th failing delivery is the last
VISIBILITY_TIMEOUT_S = 5400  # VisibilityTimeout: a delivery's message is hidden that long
DEAD_LETTER_AFTER_S = MAX_RECEIVES * VISIBILITY_TIMEOUT_S  # 27,000 s: 7.5 h
FUNCTION_TIMEOUT_S = 900  # BatchFunction's Timeout


def now() -> float:
    """Seconds since the epoch (a test moves the clock on here)."""
    return time.time()


def stalled_hint(uploaded: float) -> str | None:
    """What to do about a job whose input was uploaded at `uploaded` (seconds since the epoch;
    0 where the store does not say) and whose run left no record: None while its message may
    still be in the batch queue."""
    waited = now() - uploaded
    if not uploaded or waited <= DEAD_LETTER_AFTER_S:
        return None
    return (
        f"no run of this upload has left a record in the {waited / 3600:.1f} h since it was "
        f"uploaded, longer than its queue message can stay in the batch queue (visibility "
        f"timeout {VISIBILITY_TIMEOUT_S} s x {MAX_RECEIVES} deliveries): the message is in, or "
        "on its way to, the dead-letter queue <stack>-batch-dlq (the stack's output "
        "BatchDeadLetterQueueUrl; the BatchDeadLettersAlarm fires), EventBridge having failed "
        "to deliver the event to the batch queue (it retries for up to 24 h) or BatchFunction "
        f"having timed out ({FUNCTION_TIMEOUT_S} s) on each delivery; see BatchFunction's log "
        "for why, fix the cause, then redrive the message from the dead-letter queue (or "
        "upload the file again)"
    )
