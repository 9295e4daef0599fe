"""HEAD on the control plane: answered as the GET of the same path, headers only, and
documented so.

RFC 9110 9.3.2: a client or a monitor checks a resource, or its ETag, without its body.
FastAPI's routes take only the methods they name, so HEAD was a 405 on every GET route
(`HeadAsGet`); the stack routes HEAD /control/{proxy+} (template.yaml's ControlHead) and the
app answered it, but the OpenAPI document listed no HEAD operation, so a client generated from
it had none, and the document said less than the API does (`with_head_operations`).
"""

from __future__ import annotations

import copy
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTROL = "/control/"


class HeadAsGet:
    """HEAD answered as the GET of the same path, headers only (RFC 9110 9.3.2: a client or a
    monitor checks a resource, or its ETag, without its body). FastAPI's routes take only the
    methods they name, so HEAD was a 405 on every GET route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


def with_head_operations(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with a HEAD operation beside each control-plane GET: the GET's parameters
    and answers (their status codes and headers: an alias's ETag, a card's Content-Type),
    with no body, as `HeadAsGet` answers it."""
    for path, route in document["paths"].items():
        if not path.startswith(CONTROL) or "get" not in route or "head" in route:
            continue
        get = route["get"]
        head = copy.deepcopy({k: v for k, v in get.items() if k != "requestBody"})
        operation = str(get.get("operationId", path))
        head["operationId"] = operation.removesuffix("_get") + "_head"
        head["summary"] = f"{get.get('summary', 'GET')}: headers only"
        head["description"] = (
            f"The answer of GET {path} without its body (RFC 9110 9.3.2): its status and headers "
            "(an ETag to compare, a Content-Length), to check a resource without reading it."
        )
        for answer in head.get("responses", {}).values():
            answer.pop("content", None)
        ordered = {}
        for method, value in route.items():
            ordered[method] = value
            if method == "get":
                ordered["head"] = head
        document["paths"][path] = ordered
    return document
