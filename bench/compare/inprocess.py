"""The predict handler in-process against raw `session.run` on the same row, warm and cold.

Warm: the median of `PredictService.handle(event)` (what the Lambda handler calls) for the
simple JSON form against the median of a bare `session.run`, in this process. Cold: a fresh
process that imports the handler, loads the model from the store and answers one event,
against a fresh process that imports numpy + onnxruntime, builds the session and runs once.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.compare.workloads import ROOT, Workload
from bench.predict_latency import event, interleaved_medians

FLOOR = """
import numpy as np, onnxruntime as ort
s = ort.InferenceSession({path!r}, providers=["CPUExecutionProvider"])
s.run(None, {{{name!r}: np.zeros({shape!r}, np.{dtype})}})
"""
HANDLER = """
import json
from functions.predict.handler import handler
assert handler(json.loads({event!r}))["statusCode"] == 200
"""


def predict_event(w: Workload) -> dict[str, object]:
    body = json.dumps({"inputs": w.row.tolist()}).encode()
    headers = {"content-type": "application/json"}
    return event("POST", f"/models/{w.model}/predict", body, headers)


def handler_env(w: Workload, work: Path, cache: str) -> dict[str, str]:
    """The environment template.yaml gives a predict function, on the local store."""
    return {
        "AIAAS_STORE": str(work / "store"),
        "AIAAS_CACHE_DIR": str(work / cache),
        "AIAAS_MODEL": w.model,
        "AIAAS_MODEL_SELECTOR": "@production",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }


def warm(w: Workload, work: Path, repeat: int) -> dict[str, float]:
    """Median µs per call: raw session.run (default and aiaas options) and the handler."""
    import onnxruntime as ort

    from functions.predict.service import service_from_env
    from functions.runtime.model import session_options

    # The cache module and the logger read these at import or call time from os.environ.
    os.environ.update(handler_env(w, work, "cache-inprocess"))
    feeds = {w.input_name: w.row}
    default = ort.InferenceSession(str(w.onnx), providers=["CPUExecutionProvider"])
    options = session_options(w.onnx.stat().st_size)
    tuned = ort.InferenceSession(str(w.onnx), options, providers=["CPUExecutionProvider"])
    service = service_from_env(handler_env(w, work, "cache-inprocess"))
    logging.getLogger("aiaas").setLevel(logging.WARNING)  # no "loaded ..." line mid-report
    ev = predict_event(w)
    # The metrics' EMF lines go to stdout as in Lambda; written, but not onto the terminal.
    with contextlib.redirect_stdout(io.StringIO()):
        response = service.handle(ev)
        assert response["statusCode"] == 200, response
        medians = interleaved_medians(  # taking turns: a slow spell falls on all three alike
            {
                "handler": lambda: service.handle(ev),
                "default": lambda: default.run(None, feeds),
                "tuned": lambda: tuned.run(None, feeds),
            },
            repeat,
        )
    handler, raw_default, raw_tuned = medians["handler"], medians["default"], medians["tuned"]
    raw = min(raw_default, raw_tuned)
    return {
        "raw_default_us": raw_default,
        "raw_aiaas_options_us": raw_tuned,
        "handler_us": handler,
        "ratio": handler / raw,
    }


def _run_ms(code: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, check=True
    )
    return (time.perf_counter() - start) * 1e3


def cold(w: Workload, work: Path, runs: int) -> dict[str, Any]:
    """Median ms of a fresh floor process and a fresh handler process, interleaved."""
    floor = FLOOR.format(
        path=str(w.onnx), name=w.input_name, shape=w.row.shape, dtype=w.row.dtype.name
    )
    floor_ms: list[float] = []
    handler_ms: list[float] = []
    for i in range(runs):
        env = {**os.environ, "PYTHONPATH": str(ROOT), **handler_env(w, work, f"cache-cold-{i}")}
        floor_ms.append(_run_ms(floor, env))
        handler_ms.append(_run_ms(HANDLER.format(event=json.dumps(predict_event(w))), env))
    return {
        "floor_ms": statistics.median(floor_ms),
        "handler_ms": statistics.median(handler_ms),
        "floor_runs_ms": floor_ms,
        "handler_runs_ms": handler_ms,
    }
