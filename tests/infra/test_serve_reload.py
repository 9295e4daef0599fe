"""`aiaas serve --workers N` says a SIGHUP reload (leftovers2 4): granian's supervisor restarts
every worker on it and said so at INFO, below serve's level, so the log held only the new
pids' "loaded" lines: an operator could not tell a reload happened, nor what it read anew.
A real server, its workers and the signal; in text and under AIAAS_LOG_FORMAT=json."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_serve import ServeProcess
from tests.s3server import children


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_sighup_reload_is_one_line_naming_its_workers(tmp_path: Path, log_format: str) -> None:
    store = tmp_path / "store"
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    assert main(["--store", str(store), "publish", str(model), "--name", "m"]) == 0
    env = {"AIAAS_LOG_FORMAT": log_format}
    server = ServeProcess(store, "--workers", "2", env=env)
    try:
        server.wait_ready()
        deadline = time.monotonic() + 30
        while len(workers := children(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers) == 2, server.output()
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while "SIGHUP" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        said = [line for line in server.output().splitlines() if "SIGHUP" in line]
        assert len(said) == 1, server.output()
        if log_format == "json":
            record = json.loads(said[0])
            assert (record["level"], record["logger"]) == ("INFO", "aiaas.serve")
            said = [record["message"]]
        assert said[0].startswith("aiaas serve: SIGHUP: restarting its 2 workers one at a time")
        assert all(str(pid) in said[0] for pid in workers), (said, workers)
        assert "flags and environment read at start" in said[0]
        assert "loads its models from the store again" in said[0]
        deadline = time.monotonic() + 30  # the old workers replaced, the server serves on
        while set(children(server.process.pid)) & set(workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not set(children(server.process.pid)) & set(workers), server.output()
        body = {"inputs": [[0.0] * 4]}
        answer = httpx.post(f"{server.base}/models/m/predict", json=body, timeout=10)
        assert answer.status_code == 200, answer.text  # answered by a new worker
    finally:
        server.stop()
