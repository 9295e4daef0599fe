"""The caller's own ids of a request, for the lines written about it.

A caller (or what stands in front: an nginx ingress sets `X-Request-ID` and logs it, a traced
client sends W3C `traceparent`) knows its request by its own id, not by `apigw-requestid`:
without them on our lines, its access log or trace could not be joined with ours. They are
logged beside `request_id`, never instead of it (a caller's value is not unique), and only
when they look like ids: a bounded run of visible ASCII, a well-formed trace id. Read only
when a line is written, never on the answer's path.
"""

from __future__ import annotations

import re
from collections.abc import Callable

REQUEST_ID_HEADER = "x-request-id"
TRACEPARENT_HEADER = "traceparent"
MAX_ID = 128  # characters of a caller's request id logged (a longer one is left out)
_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_ID}}}")
# version-traceid-parentid-flags; an all-zero trace id is invalid (W3C Trace Context)
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-(?P<trace>[0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


def caller_ids(header: Callable[[str], object]) -> dict[str, str]:
    """`caller_request_id` and `trace_id` from the request's headers (`header(name)`: a
    lower-case name's value or None), those it sent well formed. A value that is no string
    (an event written by hand for `aiaas invoke -e` or a console test: `"x-request-id": 7`)
    is no id: reading it raised from the line written after the answer (review_rev3 1)."""
    found = {}
    given = header(REQUEST_ID_HEADER)
    if isinstance(given, str) and _ID.fullmatch(given.strip()):
        found["caller_request_id"] = given.strip()
    parent = header(TRACEPARENT_HEADER)
    matched = _TRACEPARENT.match(parent.strip().lower()) if isinstance(parent, str) else None
    if matched is not None and matched["trace"].strip("0"):
        found["trace_id"] = matched["trace"]
    return found
