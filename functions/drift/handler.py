"""Lambda entry point of the scheduled drift job (`functions.drift.handler.handler`).

An EventBridge schedule calls it (hourly in template.yaml); each run reads the last
`AIAAS_DRIFT_WINDOW_SECONDS` of every monitored version's histograms from the store and prints
one EMF document per version, which CloudWatch turns into the metrics the drift alarms watch.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import orjson

from functions.drift.job import DriftSettings, run, window_end
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import open_store

_RUNTIME = RuntimeSettings.from_env()
STORE = open_store(_RUNTIME.store, _RUNTIME.s3)
SETTINGS = DriftSettings(
    window_seconds=float(os.environ.get("AIAAS_DRIFT_WINDOW_SECONDS") or 3600),
    threshold=float(os.environ.get("AIAAS_DRIFT_THRESHOLD") or 0.2),
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "aiaas"),
)


def handler(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """A scheduled event -> what was reported, for the window ending at its `time`."""
    docs = run(STORE, SETTINGS, window_end(event, time.time(), SETTINGS.window_seconds))
    sys.stdout.write("".join(orjson.dumps(doc).decode() + "\n" for doc in docs))
    sys.stdout.flush()
    return {
        "versions": len(docs),
        "drifted": [f"{d['model']}:{d['version']}" for d in docs if d["drifted"]],
    }
