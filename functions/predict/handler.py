"""Lambda entry point of a per-model predict function (`functions.predict.handler.handler`).

Work at import time is the point here: the model is fetched, verified and loaded once per
container (and captured in the SnapStart snapshot), never per request.
"""

from __future__ import annotations

import atexit
import os
from typing import Any

from functions.predict.http import HttpResponse
from functions.predict.service import service_from_env
from functions.predict.telemetry import MetricsObserver, logger
from functions.runtime.download_deadline import invoked, reset
from functions.runtime.settings import env_flag
from functions.runtime.snapstart import (
    after_restore,
    reconnect_after_restore,
    reseed_after_restore,
)

SERVICE = service_from_env()
SERVICE.warm()
reconnect_after_restore(SERVICE.served.pool.registry.store)
# Each restored container its own draws: a split alias's anonymous callers, capture and shadow
# samples (the snapshot holds the generator's state).
reseed_after_restore()
# The snapshot resolved the alias at deploy time, maybe hours ago: resolve it again on the
# first request, so a restored container follows a promotion as a warm one does.
after_restore(SERVICE.served.expire)
# ... and the capture setting; a restored copy writes its captured lines under a new name.
after_restore(SERVICE.capture.expire)
after_restore(SERVICE.capture.buffer.renew)
atexit.register(SERVICE.capture.flush)  # `aiaas serve` stopping: write the lines held
if SERVICE.plane.drift is not None:
    # `aiaas serve` stopping: write the drift counts held (Lambda gives no such moment).
    atexit.register(SERVICE.plane.drift.flush)


def handler(event: dict[str, Any], context: object = None) -> HttpResponse:
    """API Gateway HTTP API (payload 2.0) event -> response.

    `aiaas serve`'s context offers `after_response(job)`: work after the response is sent (the
    shadow copy). Lambda's has no such moment (API Gateway answers when this returns): None,
    and that work is done before returning. A model it loads is downloaded by a deadline, the
    invocation's time left less a margin (download_deadline.py): a 503, not a killed function."""
    token = invoked(context)
    try:
        return SERVICE.handle(event, getattr(context, "after_response", None))
    finally:
        reset(token)


def model_seconds() -> float:
    """Recent seconds per call in onnxruntime, outside the GIL (`aiaas serve` runs functions
    above ~0.1 ms of it on a thread, so the model overlaps the next request's parsing)."""
    loaded = SERVICE.served.loaded
    return loaded.run_seconds if loaded is not None else 0.0


def varies_with_input(version: str | None = None) -> bool:
    """Whether the version that answers the next call of a route that runs the model (pinned to
    `version`, else the alias's now) may cost more on some request values than on others (a
    Loop's trip count, a size read from an input): `aiaas serve` asks before each call and never
    runs such a call on its event loop, where a heavy call, judged on the cheap ones, held every
    client."""
    served = SERVICE.served
    return served.varies_next if version is None else served.version_varies(version)


def observe(observer: MetricsObserver) -> None:
    """Report this function's requests and model loads to `observer` as well (`aiaas serve`
    hands its Prometheus metrics here when it loads the function)."""
    SERVICE.metrics.observe(observer)
    # `aiaas serve` stopping: write the EMF samples held (up to a second of them, `--metrics`
    # prints them). Only there: a one-shot invoke's stdout holds its answer alone.
    atexit.unregister(SERVICE.metrics.flush)
    atexit.register(SERVICE.metrics.flush)


def release() -> None:
    """`aiaas serve` lets go of this function (more models called than `AIAAS_SERVE_MAX_MODELS`:
    infra/local/loaded_models.py): write what it holds, as at the stop, and drop the hooks that
    would keep its module, sessions and all, alive. Lambda has no such moment."""
    flushes = [SERVICE.capture.flush, SERVICE.metrics.flush]
    if SERVICE.plane.drift is not None:
        flushes.append(SERVICE.plane.drift.flush)
    for flush in flushes:  # a server stopping meanwhile (this runs aside) writes the rest
        flush()
        atexit.unregister(flush)
    # Their timer threads end too: each waited for the next hold for the server's life, one
    # more a reload (review_rev2 2).
    SERVICE.capture.buffer.close()
    if SERVICE.plane.drift is not None:
        SERVICE.plane.drift.flush(last=True)
    # Its shadow replay process ends with it, once it has replayed the copies it was sent: it
    # lived on, held by the channel's reader thread, one more each reload (review_rev2 1).
    SERVICE.shadow.sink.close()


# X-Ray tracing is opt-in: the Tracer import alone costs ~400 ms of cold start. Powertools'
# Tracer needs aws-xray-sdk (the `tracing` extra), which the Lambda bundle does not ship: without
# it the function serves untraced and says so, rather than fail at init (every request a 502).
if env_flag(os.environ, "AIAAS_TRACING"):
    try:
        import aws_xray_sdk.core  # noqa: F401 - what Powertools' Tracer patches
    except ImportError:
        logger.error(
            "AIAAS_TRACING is on but aws-xray-sdk is not installed here (the Lambda bundle does "
            "not ship it): serving untraced. Add aws-xray-sdk to functions/requirements.in and "
            "requirements.txt to trace on Lambda, or `pip install 'aiaas[tracing]'` locally"
        )
    else:
        from aws_lambda_powertools import Tracer

        handler = Tracer(
            service=os.environ.get("POWERTOOLS_SERVICE_NAME", "aiaas")
        ).capture_lambda_handler(handler)
