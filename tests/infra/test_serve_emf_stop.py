"""`aiaas serve --metrics` prints the functions' EMF lines, which leave in batches about once
a second, on a request. A stopping server wrote what its capture buffer and drift monitor
held, but not the requests its metrics buffer held: those requests were counted in /metrics
and in the request log, and missing from the EMF lines (gath 4xx: 4 logged, 2 in EMF)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx

from functions.predict import metric_names as m
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_serve import ServeProcess

TOKEN = "emf-stop-token"


def test_the_requests_held_are_written_as_emf_when_the_server_stops(tmp_path: Path) -> None:
    store = tmp_path / "store"
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx", features=4, classes=3)
    Registry(LocalStore(store)).publish(onnx_factory.manifest_for(path, "m", "1"), path)
    server = ServeProcess(store, "--metrics", env={"AIAAS_API_TOKEN": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        server.wait_ready(auth)
        with httpx.Client(base_url=server.base, headers=auth, timeout=30) as http:
            statuses = [
                http.post("/models/m/predict", json={"inputs": rows}).status_code
                for rows in ([[1, 2, 3, 4]], [[1, 2]], [[0, 0, 0, 0]] * 3, [[5, 5, 5, 5]])
            ]
        assert statuses == [200, 422, 200, 200]
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
    finally:
        server.stop()
    counted: dict[str, float] = {}
    for line in server.log.read_text().splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        doc = json.loads(line)
        if doc.get("model") == "m" and m.REQUESTS in doc and "route" in doc:
            value = doc[m.REQUESTS]
            counted[doc["status_class"]] = counted.get(doc["status_class"], 0) + (
                sum(value) if isinstance(value, list) else value
            )
    assert counted == {"2xx": 3, "4xx": 1}, counted
