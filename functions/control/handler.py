"""Lambda entry point of the control plane (`functions.control.handler.handler`).

The app and its store are built once per container (and captured by the SnapStart snapshot).
`lifespan="off"`: Mangum would otherwise run the ASGI lifespan on every invocation, and this
app needs no start-up hook.
"""

from __future__ import annotations

from mangum import Mangum

from functions.control.app import create_app
from functions.runtime.snapstart import reconnect_after_restore

app = create_app()
handler = Mangum(app, lifespan="off")
reconnect_after_restore(app.state.control_plane.store)
