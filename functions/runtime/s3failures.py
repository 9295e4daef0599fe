"""What an S3 failure means for the store's callers, and the retries of reads that botocore does not retry.

botocore's standard retry mode (s3client.py) retries a request that could not be sent, a
5xx and a throttling answer. It does not retry, whatever its mode or max_attempts:
- a connection cut while it reads the body of a non-streaming or an error answer (a 404's
  error document, a listing, a HEAD's): `endpoint.convert_to_response_dict` reads it outside
  its retry and exception wrapping, so urllib3's `ProtocolError` escapes raw (boto3#2902);
- a connection cut while the caller reads a GET's body (`Body.read()`: botocore's
  `ResponseStreamingError` / `IncompleteReadError`, boto3#4111), where s3transfer retries
  the same cut for a model file.
A whole object's bytes that fail the checksum S3 keeps of it (a body corrupted, or cut short
with a Content-Length to match) are not retried by botocore either.
`retried` retries those for reads (GET, HEAD, LIST with the body read), whose repeat changes
nothing; a write cut so is said as the store unreachable, never sent again here.
"""

from __future__ import annotations

import http.client
import random
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from functions.runtime.errors import (
    AiaasError,
    NotFound,
    StoreError,
    StoreUnavailable,
    StoreUnreachable,
)
from functions.runtime.s3client import outdated_sdk
from functions.runtime.store import ObjectExists

T = TypeVar("T")

# Throttling and 5xx answers: S3 failing for now, its retries spent (not the caller's fault).
THROTTLING = ("SlowDown", "503", "Throttling", "ThrottlingException", "RequestLimitExceeded")
FAILING = ("InternalError", "ServiceUnavailable", "500", "502", "504", "RequestTimeout")
DEFAULT_TRIES = 3  # a client built elsewhere, whose config names none
BACKOFF_S = 0.1  # doubled each retry, jittered, at most MAX_BACKOFF_S
MAX_BACKOFF_S = 2.0


def broken(exc: BaseException) -> bool:
    """Whether the connection broke while S3's answer was read (see the module docstring)."""
    import urllib3.exceptions
    from botocore.exceptions import IncompleteReadError, ResponseStreamingError

    return isinstance(
        exc,
        urllib3.exceptions.HTTPError
        | http.client.HTTPException
        | ConnectionError
        | ResponseStreamingError
        | IncompleteReadError,
    )


def corrupted(exc: BaseException) -> bool:
    """Whether the bytes read did not match the checksum S3 keeps of the object (botocore checks
    it at the end of a whole object's read): corrupted, or cut short with a length to match."""
    from botocore.exceptions import FlexibleChecksumError

    return isinstance(exc, FlexibleChecksumError)


CORRUPTED = "what came did not match the object's checksum (corrupted or cut short on the way)"


# Credentials S3 does not take: what to do about each (an access denied is the policy's).
CREDENTIALS = {
    "InvalidAccessKeyId": "S3 does not know this access key (deleted, another account's, or "
    "for another endpoint): check AWS_ACCESS_KEY_ID or AWS_PROFILE",
    "SignatureDoesNotMatch": "the secret key is not this access key's: check "
    "AWS_SECRET_ACCESS_KEY (or the profile's aws_secret_access_key)",
    "ExpiredToken": "the session has expired: log in again (`aws sso login`) or get new keys",
    "TokenRefreshRequired": "the session has expired: log in again (`aws sso login`) or get "
    "new keys",
    "InvalidToken": "the session token is not this access key's or is cut short: check "
    "AWS_SESSION_TOKEN, or log in again",
}
# The IAM action each S3 call the store makes needs, for an access denied to name it.
ACTIONS = {
    "ListObjectsV2": "s3:ListBucket",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "CopyObject": "s3:PutObject (and s3:GetObject on the source)",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
}


def needed(exc: Exception, where: str, bucket: str) -> str:
    """What the call refused needs, as IAM writes it: "; ListObjectsV2 needs ..."."""
    operation = str(getattr(exc, "operation_name", ""))
    action = ACTIONS.get(operation)
    if action is None:
        return ""
    listing = operation == "ListObjectsV2"
    resource = f"arn:aws:s3:::{bucket}" if listing else f"arn:aws:s3:::{where[len('s3://') :]}"
    said = f"; {operation} needs {action} on {resource}"
    if operation == "HeadObject":  # S3 hides whether the object exists from such a caller
        said += (
            " (and S3 answers 403, not 404, for a missing object to a caller without "
            f"s3:ListBucket on arn:aws:s3:::{bucket})"
        )
    return said


def _response(exc: Exception) -> dict[str, Any]:
    found: dict[str, Any] = getattr(exc, "response", None) or {}
    return found


def _region(exc: Exception) -> bool:
    """Whether S3's AuthorizationHeaderMalformed is about the region the client signed for
    ("the region 'us-east-1' is wrong; expecting ..."), not a credential it cannot parse (AWS
    answers that with the same code: "the Credential is mal-formed")."""
    response = _response(exc)
    error = response.get("Error", {})
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    said = str(error.get("Message", "")).lower()  # (the mal-formed one quotes .../REGION/...)
    return bool(error.get("Region") or headers.get("x-amz-bucket-region") or "the region" in said)


def region_fix(exc: Exception) -> str:
    """What to set for a bucket of another region, as far as S3's answer names it."""
    response = _response(exc)
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    expected = re.search(r"expecting '([a-z0-9-]+)'", response.get("Error", {}).get("Message", ""))
    region = (
        response.get("Error", {}).get("Region")
        or headers.get("x-amz-bucket-region")
        or (expected.group(1) if expected else None)
    )
    if region:
        return f"set AWS_REGION={region} (or the profile's region)"
    return "set AWS_REGION (or the profile's region) to the bucket's"


def no_answer(exc: Exception) -> bool:
    """Whether S3 did not answer at all: no connection, a timeout, the connection closed."""
    from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
    from botocore.exceptions import ConnectionError as NoConnection

    return isinstance(exc, NoConnection | ReadTimeoutError | ConnectionClosedError)


def failing(exc: Exception) -> bool:
    """Whether S3 answered a 5xx or throttled: transient, though botocore's retries ran out."""
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    code = response.get("Error", {}).get("Code", "")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return code in THROTTLING or code in FAILING or int(status) >= 500


def store_error(exc: Exception, key: str, uri: str, bucket: str) -> AiaasError:
    """The store's error for botocore's (or urllib3's) `exc` on `key` of the store at `uri`."""
    from botocore.exceptions import NoCredentialsError, ParamValidationError

    from functions.runtime.s3answers import NoFirstAnswer, NotS3Answer

    if isinstance(exc, NotS3Answer):  # misconfigured: the operator's to fix, not to wait out
        return StoreError(f"S3 error on {uri}/{key}: {exc}")
    if isinstance(exc, NoFirstAnswer):  # away, as far as `aiaas serve` can tell (serve_start)
        return StoreUnreachable(f"S3 error on {uri}/{key}: {exc}")
    if isinstance(exc, ParamValidationError) and any(
        name in str(exc) for name in ("IfMatch", "IfNoneMatch")
    ):
        return StoreError(outdated_sdk())
    if isinstance(exc, NoCredentialsError):  # botocore said "Unable to locate credentials"
        return StoreError(
            f"no AWS credentials found for {uri}: set AWS_PROFILE (after `aws sso "
            "login` or `aws configure`), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    # Client errors carry the parsed response; connection and read timeouts carry None.
    code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code", "")
    if code in ("NoSuchKey", "404", "NotFound"):
        return NotFound(f"no object {key!r} in store {uri}", public_message=f"no object {key!r}")
    if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
        return ObjectExists(f"object {key!r} already exists")
    where = f"{uri}/{key}"
    if code in CREDENTIALS:
        return StoreError(
            f"S3 refused the credentials used for {uri} ({code}): {CREDENTIALS[code]}"
        )
    if code in ("AccessDenied", "403", "AllAccessDisabled"):
        return StoreError(
            f"S3 refused access to {where} ({code}): check the credentials, the role's "
            f"IAM policy and the bucket policy{needed(exc, where, bucket)}"
        )
    if code in THROTTLING:
        return StoreUnavailable(
            f"S3 is throttling requests to {where} ({code}) and the retries ran out; "
            "try again later, or spread the load (AIAAS_S3_MAX_ATTEMPTS sets the tries)"
        )
    if code == "NoSuchBucket":
        return StoreError(f"S3 bucket {bucket!r} does not exist (store {uri})")
    if code == "PermanentRedirect" or (code == "AuthorizationHeaderMalformed" and _region(exc)):
        return StoreError(f"S3 bucket {bucket!r} is in another region ({code}): {region_fix(exc)}")
    if code == "AuthorizationHeaderMalformed":  # no region named: a credential S3 cannot parse
        said = _response(exc).get("Error", {}).get("Message") or "malformed"
        return StoreError(
            f"S3 refused the credentials used for {uri} ({code}): {said.rstrip('.')}: check "
            "AWS_ACCESS_KEY_ID (an access key, AKIA... or ASIA..., not the secret key, which "
            "holds '/' and '+') and AWS_SECRET_ACCESS_KEY"
        )
    if no_answer(exc):
        return StoreUnreachable(f"S3 error on {where}: {exc}")
    if corrupted(exc):  # retried first where a read (`_read`)
        return StoreUnreachable(f"S3 error on {where}: {CORRUPTED}: {exc}")
    if broken(exc):  # retried first where a read (`_read`)
        return StoreUnreachable(f"S3 error on {where}: the connection broke mid-answer: {exc}")
    if failing(exc):  # a 5xx: S3's to mend (serve starts all the same: serve_start.py)
        return StoreUnavailable(f"S3 error on {where}: {exc}")
    return StoreError(f"S3 error on {where}: {exc}")


def tries(client: Any) -> int:
    """The client's tries, the first included (AIAAS_S3_MAX_ATTEMPTS): a cut read gets as many."""
    retries = getattr(getattr(client, "meta", None), "config", None)
    configured = (getattr(retries, "retries", None) or {}).get("total_max_attempts")
    return int(configured or DEFAULT_TRIES)


def retried(call: Callable[[], T], attempts: int) -> T:
    """`call` (a read, its body read too) again, after a short jittered backoff, while the
    connection breaks mid-answer, `attempts` times in all; the last failure is raised. The
    first try costs nothing more than the call."""
    for attempt in range(1, attempts):
        try:
            return call()
        except Exception as exc:
            if not (broken(exc) or corrupted(exc)):
                raise
        pause = min(MAX_BACKOFF_S, BACKOFF_S * 2**attempt)
        time.sleep(random.uniform(0, pause))  # noqa: S311 (a jitter, not a secret)
    return call()
