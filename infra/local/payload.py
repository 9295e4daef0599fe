"""API Gateway HTTP API payload format 2.0, both ways: a request as the event a handler gets
(`build_event`), and the handler's answer as the HTTP response API Gateway makes of it
(`to_http`). Transport-free: the gateway (gateway.py) routes, granian moves the bytes (app.py).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pybase64

from functions.predict.metric_names import NO_LABEL
from infra.local.paths import decode_again, decode_params
from infra.local.request_ids import request_id

TEXT_CACHE_SIZE = 4096  # content types judged text or not, kept at most

_TEXT_TYPES = ("text/", "json", "xml", "javascript", "x-www-form-urlencoded")


@dataclass
class GatewayRequest:
    method: str
    path: str  # decoded once, as granian gives it and API Gateway routes it (paths.py)
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str = "127.0.0.1"
    request_id: str = ""  # the HTTP app's, sent back as REQUEST_ID_HEADER; "": one made here
    # `headers` by name, given where their names are lower-case, none twice and no cookie (the
    # HTTP app's, nearly always): the event's `headers` as they are, not folded again.
    by_name: dict[str, str] | None = None


@dataclass
class GatewayResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    model_seconds: float = 0.0  # the function's recent time in its model (not sent)
    after: list[Callable[[], None]] | None = None  # work for after it is sent (`defer=True`)
    route: str | None = None  # the gateway's own answer's route label (counted); None: a function's


def error(
    status: int, message: str, headers: list[tuple[str, str]] | None = None, route: str = NO_LABEL
) -> GatewayResponse:
    return GatewayResponse(
        status,
        [("content-type", "application/json"), *(headers or [])],
        orjson.dumps({"error": message}),
        route=route,
    )


@functools.lru_cache(maxsize=2)
def _clock_text(epoch_s: int) -> str:
    """API Gateway's `time` field; formatted once a second, not once a request."""
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_s))


_TEXT_CACHE: dict[str, bool] = {}  # content type -> text? (a service sees few)


def _is_text(content_type: str) -> bool:
    known = _TEXT_CACHE.get(content_type)
    if known is None:
        known = any(marker in content_type for marker in _TEXT_TYPES)
        if len(_TEXT_CACHE) < TEXT_CACHE_SIZE:  # scans must not grow it unbounded
            _TEXT_CACHE[content_type] = known
    return known


def _fold_headers(
    pairs: list[tuple[str, str]], by_name: dict[str, str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """(headers by lower-case name, repeats joined by commas; the cookies, split). `by_name`:
    the request's, where it has them already (GatewayRequest.by_name), taken as they are."""
    if by_name is not None:
        return by_name, []
    headers = {name.lower(): value for name, value in pairs}
    if len(headers) == len(pairs) and "cookie" not in headers:
        return headers, []  # the usual request: no repeated header, no cookie
    headers = {}
    cookies: list[str] = []
    for name, value in pairs:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return headers, cookies


def _event_body(body: bytes, content_type: str) -> tuple[str | None, bool]:
    """(the event's body, isBase64Encoded): text as text, anything else base64."""
    if not body:
        return None, False
    if _is_text(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return pybase64.b64encode_as_string(body), True  # SIMD base64, straight to a str


def build_event(
    request: GatewayRequest,
    method: str,
    template: str,
    params: dict[str, str],
    principal: str | None = None,
) -> dict[str, Any]:
    """A complete API Gateway HTTP API payload 2.0 event (a plain dict, built on every request:
    the handler may read any field of it)."""
    path = decode_again(request.path) if "%" in request.path else request.path
    headers, cookies = _fold_headers(request.headers, request.by_name)
    query: dict[str, str] = {}
    if request.query:
        for key, value in parse_qsl(request.query, keep_blank_values=True):
            query[key] = f"{query[key]},{value}" if key in query else value
    body, encoded = _event_body(request.body, headers.get("content-type", ""))
    now = time.time()
    route_key = f"{method} {template}"
    host = headers.get("host", "localhost")
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "local",
        "domainName": host,
        "domainPrefix": host.partition(".")[0],
        "http": {
            "method": request.method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request.request_id or request_id(),
        "routeKey": route_key,
        "stage": "$default",
        "time": _clock_text(int(now)),
        "timeEpoch": int(now * 1000),
    }
    if principal is not None:
        context["authorizer"] = {"lambda": {"principal": principal}}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": request.query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": encoded,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if params:
        event["pathParameters"] = params if path is request.path else decode_params(params)
    if body is not None:
        event["body"] = body
    return event


def to_http(result: Any) -> GatewayResponse:
    """A handler's return value as API Gateway turns it into HTTP (payload 2.0 rules)."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # API Gateway's inference: anything else is a 200 JSON body.
        body = result if isinstance(result, str) else orjson.dumps(result).decode()
        return GatewayResponse(200, [("content-type", "application/json")], body.encode())
    raw = result.get("body") or ""
    if result.get("isBase64Encoded"):
        body_bytes = pybase64.b64decode(raw)  # SIMD base64, as lax as the stdlib's
    else:
        body_bytes = (raw if isinstance(raw, str) else str(raw)).encode("utf-8")
    given = result.get("headers")
    headers = [(str(k).lower(), str(v)) for k, v in given.items()] if given else []
    typed = False
    for name, _ in headers:
        if name == "content-type":
            typed = True
            break
    cookies = result.get("cookies")
    if cookies:
        headers += [("set-cookie", c) for c in cookies]
    if not typed:
        headers.append(("content-type", "application/json"))
    return GatewayResponse(int(result["statusCode"]), headers, body_bytes)
