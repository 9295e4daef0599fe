"""Data capture's counts in the predict function's EMF, through the real handler (API Gateway
HTTP API v2.0 events) on a directory store with a frozen clock: lines written, dropped (the
buffer at its cap, the store refusing the write) and skipped (OIP binary), each summed per
model, version and reason, written by the latencies' flush rule, and none with capture off."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from functions.predict.capture import CaptureTap
from functions.predict.metric_names import (
    CAPTURE_DROPPED,
    CAPTURE_LINES,
    CAPTURE_OUTCOMES,
    CAPTURE_SKIPPED,
    REQUESTS,
)
from functions.predict.service import PredictService
from functions.predict.telemetry import RequestMetrics
from functions.runtime.capture import buffer as capture_buffer
from functions.runtime.capture.buffer import CaptureBuffer
from functions.runtime.capture.setting import set_capture
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.functions.test_predict_capture import (
    EPOCH,
    INFER,
    MODEL,
    FrozenClock,
    lines,
    predict,
    publish,
    service,
)
from tests.functions.test_predict_events import http_event

CAPTURE_NAMES = (CAPTURE_LINES, CAPTURE_DROPPED, CAPTURE_SKIPPED)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = Registry(LocalStore(tmp_path / "store"))
    publish(registry, tmp_path)
    return registry


def frozen_service(
    registry: Registry, tmp_path: Path, clock: FrozenClock
) -> tuple[PredictService, io.StringIO]:
    """The handler with EMF to a string and capture on the frozen clock, reporting its counts."""
    svc, out = service(registry, tmp_path), io.StringIO()
    svc.metrics = RequestMetrics(clock=clock.monotonic, wall=clock.wall, out=out)
    buffer = CaptureBuffer(registry.store, clock=clock.monotonic, wall=clock.wall)
    svc.capture = CaptureTap(
        svc.served, buffer, report=svc.metrics.capture, clock=clock.monotonic, wall=clock.wall
    )
    svc.capture.refresh()
    return svc, out


def documents(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def capture_counts(out: io.StringIO) -> Counter[tuple[str, str]]:
    """Lines per (metric, reason) over every EMF document written so far."""
    counts: Counter[tuple[str, str]] = Counter()
    for doc in documents(out):
        for name in CAPTURE_NAMES:
            if name in doc:
                assert (doc["model"], doc["version"]) == (MODEL, "1")
                counts[(name, doc.get("reason", ""))] += doc[name]
    return counts


def infer_binary(svc: PredictService) -> None:
    head = json.dumps(
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                     "parameters": {"binary_data_size": 16}}]}
    ).encode()  # fmt: skip
    headers = {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(head)),
    }
    event = http_event("POST", INFER, head + bytes(16), b64=True, headers=headers)
    assert svc.handle(event)["statusCode"] == 200


def test_capture_counts_are_emf_documents_with_the_prometheus_names(
    registry: Registry, tmp_path: Path
) -> None:
    set_capture(registry, MODEL, sample=1.0, actor="test")
    clock = FrozenClock()
    svc, out = frozen_service(registry, tmp_path, clock)
    blocker = tmp_path / "store" / "capture"
    blocker.write_bytes(b"")  # a file where the capture folder goes: the write fails
    predict(svc, {"inputs": [[0, 2, 3, 4]]})  # after idleness: written (failing) at once ...
    # ... and its count written with this request's latency, not held.
    assert capture_counts(out) == {(CAPTURE_DROPPED, "write_failed"): 1}
    (doc,) = [d for d in documents(out) if CAPTURE_DROPPED in d]
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert directive == {
        "Namespace": "aiaas",
        "Dimensions": [["model", "version"], ["model", "version", "reason"]],
        "Metrics": [{"Name": CAPTURE_DROPPED, "Unit": "Count"}],
    }
    assert doc["_aws"]["Timestamp"] == int((EPOCH + clock.now) * 1000)
    blocker.unlink()

    clock.now += 5.0
    infer_binary(svc)  # sampled, not captured: skipped
    clock.now += 5.0
    predict(svc, {"inputs": [[1, 2, 3, 4]]})  # written at once
    line = len(registry.store.get_bytes(next(iter(registry.store.list_keys("capture")))))
    svc.capture.buffer.max_bytes = int(2.5 * line)  # two lines fit; a third is dropped
    for i in range(6):  # a burst 10 ms apart: held two at a time, every third dropped
        clock.now += 0.01
        predict(svc, {"inputs": [[i, 2, 3, 4]]})
    clock.now += 5.0
    predict(svc, {"inputs": [[9, 2, 3, 4]]})  # after idleness: writes what was held
    counts = capture_counts(out)
    assert counts[(CAPTURE_DROPPED, "full")] == 2
    assert counts == {
        (CAPTURE_DROPPED, "write_failed"): 1,
        (CAPTURE_SKIPPED, "binary"): 1,
        (CAPTURE_DROPPED, "full"): 2,
        (CAPTURE_LINES, ""): len(lines(registry.store)),
    }
    sent = 1 + 1 + 1 + 6 + 1  # captured or not, every 200 is counted
    assert sum(counts.values()) == sent == sum(d.get(REQUESTS, 0) for d in documents(out))
    written = [d for d in documents(out) if CAPTURE_LINES in d]
    assert written[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["model", "version"]]


def test_with_capture_off_no_capture_document_is_written(
    registry: Registry, tmp_path: Path
) -> None:
    clock = FrozenClock()
    svc, out = frozen_service(registry, tmp_path, clock)
    predict(svc, {"inputs": [[0, 2, 3, 4]]})
    infer_binary(svc)
    svc.metrics.flush()
    assert capture_counts(out) == {}
    assert sum(d.get(REQUESTS, 0) for d in documents(out)) == 2


def test_every_outcome_the_buffer_reports_has_a_metric() -> None:
    outcomes = {
        capture_buffer.WRITTEN,
        capture_buffer.DROPPED_FULL,
        capture_buffer.DROPPED_WRITE,
        capture_buffer.SKIPPED_BINARY,
    }
    assert set(CAPTURE_OUTCOMES) == outcomes
