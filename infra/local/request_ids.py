"""The gateway's `requestContext.requestId`: a random prefix and a counter per process (uuid4
costs ~2 us a call), renewed in each forked worker of `aiaas serve --workers N`.

Made once at import, the prefix and count were inherited by every worker, which then numbered
their requests alike: of 1,000 requests to two workers, a capture export held 522 distinct
request ids, so captured lines, logs and answers could not be told apart by it.

Each answer carries its id in `apigw-requestid` (REQUEST_ID_HEADER), the header API Gateway HTTP
APIs send: without it a caller could not find its request in a capture export but by its time
and inputs (infra/local/app.py adds it)."""

from __future__ import annotations

import itertools
import os

REQUEST_ID_HEADER = "apigw-requestid"

_prefix = ""
_ids = itertools.count()


def _renew() -> None:
    global _prefix, _ids
    _prefix, _ids = os.urandom(6).hex(), itertools.count()


_renew()
os.register_at_fork(after_in_child=_renew)


def request_id() -> str:
    """Unique per gateway process, the process's workers included."""
    return f"{_prefix}-{next(_ids):08x}"
