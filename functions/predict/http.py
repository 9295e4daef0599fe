"""API Gateway HTTP API payload v2.0 events and responses, as plain Python values.

Only this module knows the event's shape; the service sees an `HttpRequest`.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import orjson
import pybase64

from functions.predict.api_path import api_path
from functions.runtime.answer_size import RESPONSE_LIMIT_BYTES
from functions.runtime.content_coding import inflate
from functions.runtime.errors import (
    AiaasError,
    BadRequest,
    PayloadTooLarge,
    ResponseTooLarge,
)

JSON = "application/json"
ROUTING_HEADER = "x-aiaas-routing-key"  # sticks a caller to one version of a split alias
VERSION_HEADER = "x-aiaas-version"  # the version that answered, on every response that has one
# AWS Lambda's limit on a synchronous response, as its runtime serializes the dict below: past
# it the invoke fails and API Gateway answers a bare 502, so such an answer is refused here, in
# `aiaas serve` as in Lambda.
MAX_RESPONSE_BYTES = RESPONSE_LIMIT_BYTES


class HttpContext(TypedDict):
    method: str
    path: str
    sourceIp: NotRequired[str]


class RequestContext(TypedDict):
    http: HttpContext
    requestId: NotRequired[str]
    authorizer: NotRequired[dict[str, Any]]  # iam.userArn (IAM auth), jwt.claims.sub (JWT)


class HttpApiEvent(TypedDict):
    version: str
    rawPath: str
    requestContext: RequestContext
    headers: NotRequired[dict[str, str]]
    queryStringParameters: NotRequired[dict[str, str]]
    body: NotRequired[str]
    isBase64Encoded: NotRequired[bool]


class HttpResponse(TypedDict):
    statusCode: int
    headers: dict[str, str]
    body: str
    isBase64Encoded: bool


@dataclass
class HttpRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # as sent: API Gateway lower-cases names, direct callers may not
    query: dict[str, str]
    body: bytes
    request_id: str
    authorizer: Mapping[str, Any] | None = None
    version: str | None = None  # set once a version is chosen to answer
    later: Callable[[Callable[[], None]], None] | None = None  # the host's "after the response"

    def routing_key(self) -> str | None:
        """What keeps a caller on one version: the routing-key header, else who the caller is
        (IAM user ARN, JWT subject); None for an anonymous caller (routed at random)."""
        return self.header(ROUTING_HEADER) or caller_identity(self.authorizer)

    def header(self, name: str) -> str | None:
        """The value of header `name` (lower case), whatever case the caller used."""
        value = self.headers.get(name)
        if value is None:
            for key, found in self.headers.items():
                if key.lower() == name:
                    return found
        return value


def parse_event(event: HttpApiEvent | Mapping[str, Any], max_body: int) -> HttpRequest:
    """An `HttpRequest` from a v2.0 event; the body limit is enforced before decoding it."""
    try:
        context = event["requestContext"]
        method = context["http"]["method"].upper()
        path = api_path(event, event.get("rawPath") or context["http"]["path"])
    except (KeyError, TypeError, AttributeError):
        raise BadRequest(_not_v2(event)) from None
    # Not lower-cased up front: the hot path reads one header, found directly in the usual case.
    headers = event.get("headers") or {}
    text = event.get("body") or ""
    encoded = bool(event.get("isBase64Encoded"))
    # base64 carries 3 bytes in 4 characters, less up to 2 bytes of padding: reject early,
    # before decoding anything (a body of exactly the limit must still pass).
    size = len(text) * 3 // 4 - 2 if encoded else len(text)
    if size > max_body:
        raise PayloadTooLarge(f"request body is over the {max_body} byte limit")
    try:
        # SIMD base64 (pybase64): a 600 KB binary tensor in 0.03 ms, where the stdlib's strict
        # decode took 2.5 ms. As strict: a character outside the alphabet or padding where it
        # cannot be is refused (so is padding past the last quantum, which the stdlib took).
        body = pybase64.b64decode(text, validate=True) if encoded else text.encode("utf-8")
    except (binascii.Error, ValueError):
        raise BadRequest("request body is marked base64 but is not valid base64") from None
    if len(body) > max_body:
        raise PayloadTooLarge(f"request body is over the {max_body} byte limit")
    # API Gateway and `aiaas serve` lower-case header names; a direct caller may not.
    coding = headers.get("content-encoding") or headers.get("Content-Encoding")
    if coding is not None and body:
        body = inflate(body, coding, max_body)
    query = event.get("queryStringParameters")
    return HttpRequest(  # positional: a keyword call of 7 fields costs ~0.2 us more
        method,
        path,
        headers,
        dict(query) if query else {},
        body,
        context.get("requestId", ""),
        context.get("authorizer"),
    )


def _not_v2(event: object) -> str:
    """What an event that is no HTTP API payload 2.0 event is said to be, with the fix where
    its shape tells: a REST API's (or payload 1.0) event said only what it was not."""
    said = "not an API Gateway HTTP API (payload 2.0) event"
    if isinstance(event, Mapping) and "httpMethod" in event and "resource" in event:
        return (
            f"{said}: this is a payload 1.0 event (a REST API, or an HTTP API integration with "
            "PayloadFormatVersion 1.0); route it through an HTTP API with PayloadFormatVersion "
            "2.0, as template.yaml does"
        )
    return said


def caller_identity(authorizer: object) -> str | None:
    """The IAM user ARN or the JWT subject in an authorizer context. A Lambda authorizer's
    context is whatever that authorizer chose (locally, one principal for every token holder),
    so it does not identify a caller."""
    if not isinstance(authorizer, Mapping):
        return None
    iam = authorizer.get("iam")
    if isinstance(iam, Mapping) and iam.get("userArn"):
        return str(iam["userArn"])
    jwt = authorizer.get("jwt")
    claims = jwt.get("claims") if isinstance(jwt, Mapping) else None
    if isinstance(claims, Mapping) and claims.get("sub"):
        return str(claims["sub"])
    return None


def json_response(status: int, doc: Any, headers: dict[str, str] | None = None) -> HttpResponse:
    body = doc if isinstance(doc, bytes) else orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    return _fits(
        {
            "statusCode": status,
            "headers": {"content-type": JSON, **headers} if headers else {"content-type": JSON},
            "body": body.decode("utf-8"),
            "isBase64Encoded": False,
        }
    )


def binary_response(status: int, body: bytes, headers: dict[str, str]) -> HttpResponse:
    return _fits(
        {
            "statusCode": status,
            "headers": {"content-type": "application/octet-stream", **headers},
            "body": pybase64.b64encode_as_string(body),  # unwrapped; ~60x the stdlib's
            "isBase64Encoded": True,
        }
    )


def _fits(response: HttpResponse) -> HttpResponse:
    """`response`, or ResponseTooLarge when Lambda would refuse it (measured, as Lambda's
    runtime writes it, only when its body alone is over half the limit: one len() otherwise)."""
    if len(response["body"]) <= MAX_RESPONSE_BYTES // 2:
        return response
    size = len(orjson.dumps(response))  # the body's quotes and backslashes escaped
    if size <= MAX_RESPONSE_BYTES:
        return response
    raise ResponseTooLarge(
        f"the answer to this request is {size} bytes, over the {MAX_RESPONSE_BYTES} byte limit "
        "of a response (AWS Lambda's): ask for less in one request: fewer rows or fewer "
        "outputs (OIP binary outputs take about half the bytes of JSON numbers)"
    )


def error_response(error: AiaasError) -> HttpResponse:
    # A model that could not be downloaded in time (download_deadline.py) says when to retry.
    wait = getattr(error, "retry_after_s", None)
    headers = {"retry-after": str(wait)} if wait else None
    return json_response(int(error.status), {"error": error.public_message}, headers)
