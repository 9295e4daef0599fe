"""S3's DeleteObjects with the keys it failed sent again, and how a lost delete answer reads.

DeleteObjects answers 200 even when it deleted none of the keys: each key it could not delete is
an error in the answer (`InternalError`, `SlowDown` under partial failure, which S3 documents as
retryable). botocore retries a failed request, never such a key: one spell of them failed a
prune whose versions were all intact. Here the keys with a retryable code go again, alone, up to
the client's `total_max_attempts` (AIAAS_S3_MAX_ATTEMPTS), with backoff; a refusal (AccessDenied)
is not retried.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

RETRYABLE = frozenset({"InternalError", "SlowDown", "ServiceUnavailable", "RequestTimeout"})
PAUSE_S, MOST_PAUSE_S = 0.1, 2.0  # the backoff before a resend: 0.1 s, 0.2 s, ... at most 2 s


def delete_objects(client: S3Client, bucket: str, keys: list[str]) -> list[dict[str, Any]]:
    """Delete `keys` (at most 1,000: one request); the per-key errors left once the retryable
    ones were sent again as often as the client tries a request (none: all deleted)."""
    retries = getattr(client.meta.config, "retries", None) or {}  # as make_s3_client set it
    tries = int(retries.get("total_max_attempts", 5))
    left: list[str] = keys
    for attempt in range(1, max(tries, 1) + 1):
        objects: Any = [{"Key": key} for key in left]
        answer = client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        failed: list[dict[str, Any]] = [dict(e) for e in answer.get("Errors") or []]
        again = [str(e.get("Key")) for e in failed if e.get("Code") in RETRYABLE]
        if not failed or len(again) < len(failed) or attempt >= tries:
            return failed
        left = again
        time.sleep(random.uniform(0, min(PAUSE_S * 2 ** (attempt - 1), MOST_PAUSE_S)))  # noqa: S311
    return []


def not_deleted(failed: list[dict[str, Any]], asked: int) -> str:
    """The one line for the keys S3 did not delete, naming the first."""
    first = failed[0]
    return (
        f"S3 did not delete {len(failed)} of {asked} objects, e.g. {first.get('Key')!r}: "
        f"{first.get('Code')} {first.get('Message', '')}".rstrip()
    )


def came_on_retry(exc: BaseException | None) -> bool:
    """Whether botocore's answer `exc` (a ClientError) came to a retry: the first try may have
    been done by S3 and its answer lost (a connection reset after the object was deleted)."""
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0) > 0
