"""`aiaas serve --workers N`: which worker a log line comes from.

Every worker logs the same lines (a model loaded, a capture setting read, a model unloaded, an
alias's new version), and nothing told them apart: N identical lines an event, no way to follow
one worker (the one the OOM killer took, say) through the log (workers hunt 2). Each worker's
JSON lines now carry its `pid`, the pid serve's line about a worker's death names, and the
banner says how many workers there are.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_serve import ServeProcess
from tests.s3server import children


def test_each_workers_lines_carry_its_pid_and_the_banner_counts_them(tmp_path: Path) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    registry.publish(onnx_factory.manifest_for(path, "m", "1", labels=("a", "b", "c")), path)
    env = {"POWERTOOLS_LOG_LEVEL": "INFO"}  # the load lines
    server = ServeProcess(tmp_path / "store", "--workers", "2", env=env)
    try:
        server.wait_ready()
        deadline = time.monotonic() + 30
        while len(loads := _loads(server)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # each worker's warm-up loads the model
        workers = children(server.process.pid)
        assert sorted(line.get("pid", 0) for line in loads) == sorted(workers), server.output()
        banner = server.output().splitlines()[0]
        assert banner.startswith("aiaas serve: http://") and banner.endswith("  2 workers")
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=20) == 0, server.output()
    finally:
        server.stop()


def _loads(server: ServeProcess) -> list[dict[str, object]]:
    lines = [line for line in server.output().splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]
    return [r for r in records if str(r.get("message", "")).startswith("loaded m:1 from ")]
