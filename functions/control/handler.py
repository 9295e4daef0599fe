"""Lambda entry point of the control plane (`functions.control.handler.handler`).

The app and its store are built once per container (and captured by the SnapStart snapshot).
`lifespan="off"`: Mangum would otherwise run the ASGI lifespan on every invocation, and this
app needs no start-up hook.
"""

from __future__ import annotations

from mangum import Mangum

from functions.control.app import create_app

app = create_app()
handler = Mangum(app, lifespan="off")


def _after_restore() -> None:
    # A snapshot is restored on other machines, later: rebuild the S3 client (credentials,
    # connections) on first use instead of reusing the one captured at init.
    store = app.state.control_plane.store
    if hasattr(store, "_client"):
        store._client = None


try:  # present in Lambda's Python runtime when SnapStart is on
    from snapshot_restore_py import register_after_restore

    register_after_restore(_after_restore)
except ImportError:
    pass
