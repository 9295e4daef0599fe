"""Lambda entry point of the control plane (`functions.control.handler.handler`).

The app and its store are built once per container (and captured by the SnapStart snapshot).
`lifespan="off"`: Mangum would otherwise run the ASGI lifespan on every invocation, and this
app needs no start-up hook.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from mangum import Mangum

from functions.control.app import create_app
from functions.predict.api_path import api_path
from functions.runtime.download_deadline import within
from functions.runtime.snapstart import reconnect_after_restore, reseed_after_restore


class _PathAsGiven(Mangum):
    """Mangum, given the path as API Gateway decoded it (and still a handler object, which the
    local gateway runs on a thread with an event loop of its own: infra/local/functions.py)."""

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        # A model a route loads (compare's two versions) is downloaded by the invocation's time
        # left less a margin (download_deadline.py): a 503, not a function killed at its Timeout.
        with within(context):
            return super().__call__(_host_readable(_path_kept(_route_path(event))), context)


def _route_path(event: dict[str, Any]) -> dict[str, Any]:
    """`event` with a named stage's or a custom domain's API mapping's leading segments taken
    off its paths (functions/predict/api_path.py): Mangum routed `/prod/control/models` and
    `/ml/control/models` as sent, a 404 for every control route there."""
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, dict) else None
    if not isinstance(context, dict) or not isinstance(http, dict):
        return event
    path = http.get("path")
    if not isinstance(path, str) or (own := api_path(event, path)) == path:
        return event
    cut = path[: len(path) - len(own)]  # the same leading segments, as sent in rawPath
    raw = event.get("rawPath")
    kept = {**event, "requestContext": {**context, "http": {**http, "path": own}}}
    if isinstance(raw, str) and raw.startswith(cut + "/"):
        kept["rawPath"] = raw[len(cut) :]
    return kept


def _path_kept(event: dict[str, Any]) -> dict[str, Any]:
    """`event` with its path quoted once, so Mangum's decoding gives back the path itself.

    API Gateway hands the function a path it has already decoded (twice: infra/local/paths.py);
    Mangum decodes `requestContext.http.path` again, so `%2e%2e` sent as `%25252e%25252e` became
    `..`, and a `%` in a job file name decoded whatever followed it.
    """
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, dict) else None
    if (
        not isinstance(context, dict)
        or not isinstance(http, dict)
        or "%" not in str(http.get("path", ""))
    ):
        return event  # nothing Mangum's decoding would change
    kept = {**http, "path": quote(http["path"], safe="/")}
    return {**event, "requestContext": {**context, "http": kept}}


def _host_readable(event: dict[str, Any]) -> dict[str, Any]:
    """`event` without a Host header Mangum cannot read: the port ignored, as routing ignores it.

    Mangum splits the Host at ':' and calls int() on the port, so `Host: localhost:abc`,
    `localhost:` or `[::1]:8080` raised out of the handler: a 502 on every control route, /docs
    and /openapi.json, logged as an error and counted as a 5xx, for any client that sent one.
    The app reads no Host (its answers hold paths only), so dropping it changes nothing else.
    """
    headers = event.get("headers")
    if not isinstance(headers, dict):
        return event
    kept = {k: v for k, v in headers.items() if k.lower() != "host" or _readable(str(v))}
    return event if len(kept) == len(headers) else {**event, "headers": kept}


def _readable(host: str) -> bool:
    """Whether Mangum's `get_server_and_port` takes `host`: a name, or one ':' and a number."""
    _, colon, port = host.partition(":")
    return not colon or (":" not in port and port.isascii() and port.isdigit())


app = create_app()
handler = _PathAsGiven(app, lifespan="off")
reconnect_after_restore(app.state.control_plane.store)
reseed_after_restore()  # retries' pauses after a lost race: each restored container its own
