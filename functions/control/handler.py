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
from functions.runtime.snapstart import reconnect_after_restore


class _PathAsGiven(Mangum):
    """Mangum, given the path as API Gateway decoded it (and still a handler object, which the
    local gateway runs on a thread with an event loop of its own: infra/local/functions.py)."""

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return super().__call__(_path_kept(event), context)


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


app = create_app()
handler = _PathAsGiven(app, lifespan="off")
reconnect_after_restore(app.state.control_plane.store)
