"""Liveness while `aiaas serve` still loads its models at start (docs/kubernetes.md, Probes).

The functions' inits take turns (infra/local/functions.py, `patched_environ`), and the warm-up
inited the models before the health function: a liveness call waited for every model's
download and load. Kubernetes' startupProbe (timeout 1 s) then failed throughout a slow load,
and a pod whose models take longer than its failureThreshold to load was restarted, its
download begun again, before it ever served.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

from functions.runtime.s3store import S3Store
from tests.infra.test_serve import ROOT
from tests.infra.test_serve_operator import publish_linear, serve_command
from tests.reliability.s3proxy import DelayingProxy
from tests.s3server import MotoServer, free_port, listens

PROBE_TIMEOUT_S = 1.0  # a Kubernetes probe's default timeoutSeconds
DELAY_S = 1.5  # each S3 reply held this long: the model's load takes several of them


def test_liveness_answers_while_a_model_still_loads(
    s3_store: S3Store, moto_server: MotoServer, tmp_path: Path
) -> None:
    publish_linear(s3_store, tmp_path, "slow")
    proxy = DelayingProxy(moto_server.port).start()
    proxy.delay = DELAY_S
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    # --models: no listing at start, so the port opens at once and the load comes after it.
    command = serve_command(Path(), "--port", str(port), "--models", "slow")
    command[command.index("--store") + 1] = f"s3://{s3_store.bucket}/registry"
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.endpoint, "AIAAS_CACHE_DIR": str(tmp_path)}
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 30
        while not listens(process.pid, port):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        opened = time.monotonic()
        live = httpx.get(f"{base}/v2/health/live", timeout=PROBE_TIMEOUT_S)
        assert (live.status_code, live.json()) == (200, {"live": True})
        assert "loaded slow:1" not in log.read_text()  # answered while the model loads
        ready = httpx.get(f"{base}/v2/models/slow/ready", timeout=60)
        assert ready.status_code == 200, ready.text
        assert time.monotonic() - opened > 2 * DELAY_S  # the load was slow indeed
    finally:
        process.terminate()
        process.wait(timeout=30)
        proxy.stop()
