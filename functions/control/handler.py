"""Lambda entry point of the control plane (`functions.control.handler.handler`).

The app and its store are built once per container. `lifespan="off"`: Mangum would otherwise
run the ASGI lifespan on every invocation, and this app needs no start-up hook.
"""

from __future__ import annotations

from mangum import Mangum

from functions.control.app import create_app

app = create_app()
handler = Mangum(app, lifespan="off")
