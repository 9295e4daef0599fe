"""Answers no S3 server gives, and an endpoint that never answers: each said at once, in one line.

botocore parses whatever comes back. An endpoint that is not S3 (`AWS_ENDPOINT_URL_S3` set to a
web server, the console's address, an S3 website endpoint; a proxy or captive portal answering in
S3's place) answered `200 text/html`: a listing of nothing (`aiaas models`: "no models", exit 0;
health ready), a GET with no ETag (a `KeyError: 'ETag'` traceback, the predict function's init
crashed), "model not found". A `403 text/html` page was `An error occurred () ...`. `check_answer`
refuses such an answer before botocore parses it: raised from botocore's `before-parse` event,
it is not retried.

An endpoint that accepts the connection and never answers held every command for botocore's
tries x the read timeout: 30 s x 5 = 151 s. A client of an endpoint the user set
(`AWS_ENDPOINT_URL_S3`) that has had no answer from it yet does not try a timed-out request
again (`first_contact_retry`): one timeout, then a line naming the endpoint. Once it has
answered, and always for AWS's own endpoint, a timeout is retried as before (a blip, not a
misconfiguration). The CLI also probes such an endpoint before the first request, so one that
never answers costs it the connect timeout, not a read timeout (s3probe.py). A 5xx or 429 page (a proxy's or load balancer's 502/503) is left to
botocore's retries, as S3's own 503 SlowDown is.
"""

from __future__ import annotations

import functools
from typing import Any

from functions.runtime.s3probe import before_first_request
from functions.runtime.settings import aws_client_environment

# 2xx answers whose body is the object's own bytes and type: every S3 server sends an ETag.
OBJECT_ANSWERS = frozenset({"GetObject", "HeadObject"})
ETAG_ANSWERS = OBJECT_ANSWERS | {"PutObject", "UploadPart"}


@functools.cache
def _errors() -> dict[str, Any]:
    """NotS3Answer and NoFirstAnswer, botocore's errors (so a store says them as any other S3
    error), made at first use: botocore is the `aws` extra, and `pip install aiaas` imports
    every serving module without it (tests/infra/test_serving_imports.py)."""
    from botocore.exceptions import BotoCoreError

    class NotS3Answer(BotoCoreError):
        """The endpoint answered as no S3 server does."""

        fmt = "{endpoint} is not an S3 endpoint: it answered {operation} with {what}; {hint}"

    class NoFirstAnswer(BotoCoreError):
        """The endpoint has not answered this client once, and this request timed out too."""

        fmt = "{endpoint} {what} (not tried again: it has not answered once); {hint}"

    return {"NotS3Answer": NotS3Answer, "NoFirstAnswer": NoFirstAnswer}


def __getattr__(name: str) -> Any:  # `from functions.runtime.s3answers import NotS3Answer`
    try:
        return _errors()[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def custom_endpoint() -> bool:
    """Whether the client is built for an endpoint of the user's (not AWS's own)."""
    env = dict(aws_client_environment())
    return any(env.get(name) for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"))


def endpoint_hint() -> str:
    """Where the endpoint came from, to check (the variables the client was built under)."""
    env = dict(aws_client_environment())
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if env.get(name):
            return f"check {name} (an S3 API endpoint, e.g. MinIO's http://HOST:9000)"
    return "check the network: a proxy (HTTPS_PROXY) or a captive portal answers in S3's place"


def _not_s3(operation: str, status: int, headers: Any, body: bytes) -> str | None:
    """What in this answer no S3 server sends, or None."""
    if status >= 500 or status == 429:
        return None  # a proxy's or load balancer's passing error page: botocore's retries judge
    ctype = str(headers.get("content-type", "")).split(";")[0].strip().lower()
    if 200 <= status < 300 and operation in ETAG_ANSWERS and "etag" not in headers:
        what = "an HTML page" if ctype == "text/html" else f"no ETag ({ctype or 'no type'})"
        return f"{what} (HTTP {status})"
    if 200 <= status < 300 and operation in OBJECT_ANSWERS:
        return None  # the object's own type: an object may well be an HTML page
    start = body.lstrip()[:64].lower()  # moto types an empty body text/html: only a body counts
    if start and (ctype == "text/html" or start.startswith((b"<!doctype html", b"<html"))):
        return f"an HTML page (HTTP {status})"
    if start and not start.startswith(b"<"):  # S3's listings and error documents are XML
        return f"a body that is not XML ({ctype or 'no type'}, HTTP {status})"
    return None


def install(client: Any) -> None:
    """Check every answer `client` gets, and try no timed-out request again until one came."""
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    not_s3, no_first = _errors()["NotS3Answer"], _errors()["NoFirstAnswer"]
    answered = [False]
    endpoint = str(client.meta.endpoint_url)
    config = client.meta.config
    checked = endpoint_hint()  # the variables the client is built under, as it reads them

    def check_answer(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
        body = response_dict.get("body")  # a GET's stream, unread; an error's bytes, read
        what = _not_s3(
            operation_model.name,
            int(response_dict.get("status_code") or 0),
            response_dict.get("headers") or {},
            body if isinstance(body, bytes) else b"",
        )
        if what is not None:
            raise not_s3(endpoint=endpoint, operation=operation_model.name, what=what, hint=checked)
        answered[0] = True

    def first_contact_retry(caught_exception: Exception | None = None, **_: Any) -> None:
        if answered[0] or caught_exception is None:
            return  # botocore's retry handler decides
        if isinstance(caught_exception, ReadTimeoutError):
            what = f"accepted the connection but sent no answer within {config.read_timeout:g} s"
            setting = "AIAAS_S3_READ_TIMEOUT"
        elif isinstance(caught_exception, ConnectTimeoutError):
            what = f"did not take the connection within {config.connect_timeout:g} s"
            setting = "AIAAS_S3_CONNECT_TIMEOUT"
        else:
            return
        raise unanswered(what, setting) from caught_exception

    def unanswered(what: str, setting: str) -> Exception:
        error: Exception = no_first(
            endpoint=endpoint, what=what, hint=f"{checked}; {setting} sets the wait"
        )
        return error

    client.meta.events.register("before-parse.s3", check_answer)
    if custom_endpoint():  # AWS's own: a first timeout is a blip (a cold start's network), retried
        client.meta.events.register_first("needs-retry.s3", first_contact_retry)
        probe = before_first_request(endpoint, config, unanswered)  # the CLI's only (s3probe.py)
        if probe is not None:
            client.meta.events.register_first("before-send.s3", probe)
