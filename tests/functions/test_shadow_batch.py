"""Copies batched on the caller's side (functions/shadow/batch.py): a lone copy goes at once,
a burst's copies go together, and what a burst leaves held reaches the real replay process
without anyone draining (the results thread sends it)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from functions.predict import metric_names as m
from functions.shadow.batch import BATCH_COPIES, BATCH_S, CopyBatch
from infra.local.metrics import GatewayMetrics
from tests.functions.test_predict_events import http_event
from tests.functions.test_predict_shadow import PREDICT, prometheus, registry_with, serve

LABELS = ("m", "1", "2")


def test_a_lone_copy_is_due_at_once_and_a_burst_every_batch() -> None:
    batch = CopyBatch()
    assert batch.add(LABELS, b"a\n", now=100.0)  # after a pause
    assert batch.take() == ([b"a\n"], {LABELS: 1})
    due = [batch.add(LABELS, b"b\n", now=100.0 + i * 1e-5) for i in range(1, BATCH_COPIES + 1)]
    assert due == [False] * (BATCH_COPIES - 1) + [True]  # held until a batch is full
    lines, counts = batch.take()
    assert len(lines) == BATCH_COPIES and counts == {LABELS: BATCH_COPIES}
    assert not batch.add(LABELS, b"c\n", now=100.001)
    assert not batch.due(100.002) and batch.due(100.002 + BATCH_S)  # the rest, once old
    assert batch.take()[1] == {LABELS: 1}


def test_a_burst_tail_reaches_the_replay_process_without_a_drain(tmp_path: Path) -> None:
    service, _, gateway = serve(registry_with(tmp_path, ("a", "b", "c")), tmp_path)
    body = json.dumps({"inputs": [[0.1, 0.2, 0.3, 0.4]]})
    for _ in range(BATCH_COPIES + 3):  # one at once, a batch, three held
        assert service.handle(http_event("POST", PREDICT, body))["statusCode"] == 200
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and replayed(gateway) < BATCH_COPIES + 3:
        time.sleep(0.05)
    assert prometheus(gateway, m.SHADOW_REQUESTS) == BATCH_COPIES + 3


def replayed(gateway: GatewayMetrics) -> float:
    if "shadow_version" not in gateway.render()[0].decode():
        return 0
    return prometheus(gateway, m.SHADOW_REQUESTS)
