"""A Step Functions Catch's error, as a line a person reads.

When a `lambda:invoke` task fails, Step Functions hands the Catch `{"Error": <errorType>,
"Cause": <the function's error response, as JSON text>}`: errorMessage, errorType, requestId and
the stackTrace. Kept as it came, a batch run's summary and a rollout's log held a stack trace;
these give `errorType: errorMessage`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping


def _error_response(cause: object) -> tuple[str | None, str] | None:
    """(errorType, errorMessage) when `cause` is a Lambda function's error response."""
    try:
        error = json.loads(str(cause or ""))
    except ValueError:
        return None
    if not isinstance(error, dict) or not isinstance(error.get("errorMessage"), str):
        return None
    kind = error.get("errorType")
    return (kind if isinstance(kind, str) else None), error["errorMessage"]


def cause_text(cause: object) -> str:
    """`errorType: errorMessage` of a Lambda error response; any other cause as it came."""
    response = _error_response(cause)
    if response is None:
        return str(cause or "")
    kind, message = response
    return f"{kind}: {message}" if kind else message


def task_error(error: Mapping[str, object]) -> str:
    """The line for a Catch's `{"Error", "Cause"}`: `Error: Cause`, the cause read as above."""
    kind, cause = str(error.get("Error") or "error"), error.get("Cause")
    response = _error_response(cause)
    if response is not None:
        return f"{response[0] or kind}: {response[1]}"
    return f"{kind}: {cause or ''}".strip(": ")
