"""A worker started while the store is away (granian respawning one the OOM killer took, or
`aiaas serve` restarted during an outage) serves the version its model last served there, from
the verified cache, by the local record beside it (functions/runtime/served_record.py); it
served nothing until the store answered, though the verified file was in the cache.

moto's server is stopped for the outage (and started again, empty, for the store's return);
`aiaas serve` runs as the real CLI, its worker SIGKILLed as the OOM killer does."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from functions.runtime.registry import ModelRef, Registry
from functions.runtime.s3store import S3Store, make_s3_client
from functions.runtime.served_record import ServedRecords
from tests import onnx_factory
from tests.infra.test_serve import ROOT
from tests.infra.test_serve_operator import serve_command
from tests.s3server import MotoServer, children, free_port, stop_process, wait_answering

ROW = [0.5] * 8
# Ports of this file's own (the moto server is stopped and started again on its port).
MOTO_PORT, SERVE_PORT = free_port(), free_port()  # one each for the module: moto restarts on it
# One try of one second a call: the outage is seen at once, not after retries.
ENV = {"AIAAS_S3_MAX_ATTEMPTS": "1", "AIAAS_S3_CONNECT_TIMEOUT": "1", "AIAAS_ALIAS_TTL": "1"}


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[MotoServer]:
    server = MotoServer(port=MOTO_PORT).start(tmp_path / "moto.log")
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    yield server
    server.stop()


def publish(bucket: str, workdir: Path, name: str, version: str, bias: float = 0.0) -> str:
    """`name:version` published and made production's; the sha256 of its model file."""
    path = onnx_factory.linear_classifier(workdir / f"{name}-{version}.onnx", 8, 3, bias=bias)
    registry = Registry(S3Store(bucket, "registry"))
    registry.publish(onnx_factory.manifest_for(path, name, version), path)
    registry.set_alias(name, "production", version)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def serving(bucket: str, workdir: Path, *args: str) -> Iterator[Serve]:
    server = Serve(bucket, workdir, args)
    try:
        yield server
    finally:
        server.stop()


class Serve:
    def __init__(self, bucket: str, workdir: Path, args: tuple[str, ...]) -> None:
        self.base = f"http://127.0.0.1:{SERVE_PORT}"
        self.log = workdir / f"serve-{uuid.uuid4().hex[:6]}.log"
        command = serve_command(Path(), "--port", str(SERVE_PORT), *args)
        command[command.index("--store") + 1] = f"s3://{bucket}/registry"
        env = {**os.environ, **ENV, "AIAAS_CACHE_DIR": str(workdir / "cache")}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)

    def wait_ready(self, model: str) -> None:
        url = f"{self.base}/v2/models/{model}/ready"
        wait_answering(self.process, SERVE_PORT, url, timeout=90, log=self.log)

    def get(self, path: str) -> tuple[int, Any]:
        answer = httpx.get(f"{self.base}{path}", timeout=30)
        return answer.status_code, answer.json()

    def predict(self, model: str) -> tuple[int, str | None, Any]:
        """(status, the version that answered, body)."""
        answer = httpx.post(
            f"{self.base}/models/{model}/predict", json={"inputs": [ROW]}, timeout=30
        )
        return answer.status_code, answer.headers.get("x-aiaas-version"), answer.json()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def lines(self, text: str) -> list[dict[str, Any]]:
        found = [orjson.loads(line) for line in self.output().splitlines() if line.startswith("{")]
        return [line for line in found if text in str(line.get("message", ""))]

    def stop(self) -> None:
        stop_process(self.process, grace=20)


def bucket_made() -> str:
    bucket = f"aiaas-test-{uuid.uuid4().hex[:12]}"
    make_s3_client().create_bucket(Bucket=bucket)
    return bucket


def test_a_worker_respawned_while_s3_is_away_serves_the_recorded_version_from_the_cache(
    moto: MotoServer, tmp_path: Path
) -> None:
    """`--workers 2`, S3 stopped, a worker SIGKILLed (the OOM killer): granian respawns it, and
    the new one answered its share of the calls (about half) 503 "model is not available"
    until S3 came back. It now serves version 1 from the cache, says so (a log line, the
    model's ready answer, a load counted as `local_record`), and serves what the alias names
    once S3 answers again."""
    bucket = bucket_made()
    publish(bucket, tmp_path, "lin", "1")
    with serving(bucket, tmp_path, "--workers", "2") as server:
        server.wait_ready("lin")
        deadline = time.monotonic() + 60
        while len(server.lines("loaded lin:1 from")) < 2 or len(children(server.process.pid)) < 2:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        workers = children(server.process.pid)  # each has loaded version 1 from S3
        moto.stop()
        os.kill(workers[0], signal.SIGKILL)
        while (now := children(server.process.pid)) in ([workers[1]], workers):
            assert time.monotonic() < deadline and server.process.poll() is None, server.output()
            time.sleep(0.05)
        assert len(now) == 2 and workers[0] not in now, now
        while not (
            server.lines("from the local cache (sha256 checked) until the store answers")
            or server.lines("model lin not loaded at init")  # how the new one's warm-up ended
        ):
            assert time.monotonic() < deadline, server.output()[-3000:]
            time.sleep(0.1)
        answers = []
        for _ in range(40):  # a connection the killed worker had been given: reset
            with contextlib.suppress(httpx.TransportError):
                answers.append(server.predict("lin")[:2])
        assert answers == [(200, "1")] * len(answers) and len(answers) >= 38, answers
        ready = [server.get("/v2/models/lin/ready") for _ in range(20)]
        assert all(status == 200 for status, _ in ready), ready
        assert {
            "name": "lin",
            "version": "1",
            "ready": True,
            "served_from": "local record",
            "store": "the model store is not reachable",
        } in [doc for _, doc in ready]
        said = server.lines("from the local cache (sha256 checked) until the store answers")
        assert len(said) == 1 and "serving lin:1" in said[0]["message"], server.output()
        metrics = httpx.get(f"{server.base}/metrics", timeout=30).text
        counted = 'aiaas_model_loads_total{model="lin",outcome="local_record",version="1"} 1.0'
        assert counted in metrics, metrics

        moto.start()  # back, empty: the model published again as version 2, production's
        make_s3_client().create_bucket(Bucket=bucket)
        publish(bucket, tmp_path, "lin", "2", bias=5.0)
        deadline = time.monotonic() + 30
        while not (
            server.lines("the store answers again: serving lin:2, as its alias says")
            and len(server.lines("lin now serves lin:2 (was lin:1)")) == 2  # both workers
        ):
            assert server.predict("lin")[0] == 200  # each worker refreshes on a call
            assert time.monotonic() < deadline, server.output()[-3000:]
            time.sleep(0.1)
        for _ in range(10):  # each worker on version 2, neither from its record
            assert server.predict("lin")[:2] == (200, "2")
            assert server.get("/v2/models/lin/ready") == (
                200,
                {"name": "lin", "version": "2", "ready": True},
            )


def test_serve_restarted_while_s3_is_away_serves_recorded_models_and_never_a_damaged_file(
    moto: MotoServer, tmp_path: Path
) -> None:
    """`aiaas serve --workers 1` SIGKILLed and restarted (a supervisor, a pod's container)
    during an outage served no model ("no models yet") until S3 answered. Now a model whose verified file is in the cache is served; one whose cached
    file no longer matches its recorded sha256 is not (503), and the log says why."""
    bucket = bucket_made()
    publish(bucket, tmp_path, "good", "1")
    damaged = publish(bucket, tmp_path, "bad", "1", bias=1.0)
    with serving(bucket, tmp_path, "--workers", "1") as server:
        server.wait_ready("good")
        server.wait_ready("bad")
        moto.stop()
        server.process.kill()
        server.process.wait(timeout=10)
    cached = tmp_path / "cache" / f"{damaged}.onnx"
    cached.write_bytes(cached.read_bytes()[:-8] + b"\0" * 8)  # same size, another sha256
    with serving(bucket, tmp_path, "--workers", "1") as server:
        server.wait_ready("good")
        assert server.predict("good")[:2] == (200, "1")
        assert server.predict("bad")[0] == 503
        assert server.get("/v2/models/bad/ready") == (
            503,
            {"error": "model is not available", "ready": False},
        )
        assert "the models above serve the version they last served here" in server.output()
        refused = server.lines("its recorded version 1 cannot be served from the cache either")
        assert refused and refused[0]["message"].startswith("bad: "), server.output()[-3000:]


def test_a_record_is_used_only_for_its_own_store_reference_and_files(tmp_path: Path) -> None:
    """A record edited by hand, or one of another store, is not served from."""
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx", 8, 3)
    manifest = onnx_factory.manifest_for(path, "m", "1")
    ref = ModelRef("m", alias="production")
    records = ServedRecords(tmp_path / "cache", "s3://a/reg")
    assert records.read(ref) is None
    records.write(ref, manifest)
    assert records.read(ref) == manifest
    assert records.models() == ["m"]
    assert ServedRecords(tmp_path / "cache", "s3://b/reg").read(ref) is None
    staging = ModelRef("m", alias="staging")
    records.path(staging).write_bytes(records.path(ref).read_bytes())  # copied by hand
    assert records.read(staging) is None
    record = orjson.loads(records.path(ref).read_bytes())
    record["sha256"]["model.onnx"] = "0" * 64
    records.path(ref).write_bytes(orjson.dumps(record))
    assert records.read(ref) is None
    records.path(ref).write_text('{"manifest": {}}')
    assert records.read(ref) is None
