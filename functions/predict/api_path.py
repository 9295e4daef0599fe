"""The API's own path of an HTTP API v2.0 event: what a named stage or a custom domain's API
mapping put in front of the route taken off.

API Gateway keeps both in `rawPath` and `requestContext.http.path`: on a named stage `prod`,
`/prod/models/iris/predict`; through a custom domain whose API mapping's path is `ml` (or
`ml/v1`), `/ml/models/iris/predict`, though the route that matched is
`POST /models/iris/predict`. The functions route on the API's paths, so each such request was a
404 (`no route for POST /ml/models/iris/predict`). The event's `routeKey` names the route that
matched: the path's last segments are that route's, and what comes before them is the mapping's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EXECUTE_API = ".amazonaws.com"  # {api id}.execute-api.{region}.amazonaws.com: no API mapping


def api_path(event: Mapping[str, Any], path: str) -> str:
    """`path` (the event's) without a named stage's or an API mapping's leading segments."""
    context = event.get("requestContext")
    if type(context) is not dict:  # a dict, always, from Lambda: the ABC's check costs ~0.3 us
        context = context if isinstance(context, Mapping) else {}
    stage = context.get("stage")
    if isinstance(stage, str) and stage != "$default" and path.startswith(f"/{stage}/"):
        return path[len(stage) + 1 :]  # a named stage's prefix, on the API's own domain
    domain = context.get("domainName")
    if not isinstance(domain, str) or not domain or domain.endswith(EXECUTE_API):
        return path  # no custom domain, so no API mapping
    route_key = event.get("routeKey") or context.get("routeKey")
    if isinstance(route_key, str):  # aiaas serve's host, or a custom domain
        template = route_key.partition(" ")[2]
        if template.count("/") == path.count("/") and "+}" not in template:
            return path  # as many segments as the route: nothing in front (~0.3 us, not ~2)
    mapped = _mapping_segments(path, route_key, event.get("pathParameters"))
    return "/" + "/".join(path.split("/")[1 + mapped :]) if mapped else path


def _mapping_segments(path: str, route_key: object, params: object) -> int:
    """How many leading segments of `path` lie before the route `route_key` names (0 when the
    path does not end in that route's segments: the path is then taken as it is)."""
    if not isinstance(route_key, str) or not path.startswith("/"):
        return 0
    _, _, template = route_key.partition(" ")
    if not template.startswith("/"):
        return 0  # `$default`: no route to measure by
    wanted = template.split("/")[1:]
    parts = path.split("/")[1:]
    length = 0
    for segment in wanted:
        if segment.startswith("{") and segment.endswith("+}"):  # greedy: as many as it took
            value = params.get(segment[1:-2]) if isinstance(params, Mapping) else None
            if not isinstance(value, str):
                return 0
            length += len(value.split("/"))
        else:
            length += 1
    mapped = len(parts) - length
    if mapped <= 0:
        return 0
    for index, segment in enumerate(wanted):  # the route's literal segments, where they belong
        if segment.startswith("{") and segment.endswith("+}"):
            break
        if not segment.startswith("{") and parts[mapped + index] != segment:
            return 0
    return mapped
