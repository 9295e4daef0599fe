"""The served record (functions/runtime/served_record.py) of an S3 store is of its endpoint
too: `s3://bucket/prefix` names one bucket on AWS, but two S3 servers of the user's (a MinIO
for staging and one for production, AWS and a MinIO) may each hold a bucket of that name. The
records were kept by the URI alone, so with a shared cache (AIAAS_CACHE_DIR, the default one
on a laptop) a serve of the other endpoint, started while it was away, served the first one's
model under the same name (review_rev2 3)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import httpx

from functions.runtime.registry import ModelRef, Registry
from functions.runtime.s3store import S3Store
from functions.runtime.served_record import ServedRecords
from functions.runtime.settings import RuntimeSettings
from tests import onnx_factory
from tests.infra.test_serve import ROOT
from tests.infra.test_serve_operator import serve_command
from tests.s3server import MotoServer, free_port, stop_process, wait_answering

AWAY_PORT, SERVE_PORT = free_port(), free_port()  # AWAY: none listens
ENV = {"AIAAS_S3_MAX_ATTEMPTS": "1", "AIAAS_S3_CONNECT_TIMEOUT": "1", "AIAAS_ALIAS_TTL": "1"}
ROW = [0.5] * 8


def serve(bucket: str, workdir: Path, endpoint: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = workdir / f"serve-{uuid.uuid4().hex[:6]}.log"
    command = serve_command(Path(), "--port", str(SERVE_PORT), "--workers", "1")
    command[command.index("--store") + 1] = f"s3://{bucket}/registry"
    env = {**os.environ, **ENV, "AWS_ENDPOINT_URL": endpoint}
    env["AIAAS_CACHE_DIR"] = str(workdir / "cache")
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    return process, log


def test_a_serve_of_another_endpoint_never_serves_this_ones_record(
    moto_server: MotoServer, s3_bucket: str, tmp_path: Path
) -> None:
    bucket = s3_bucket
    path = onnx_factory.linear_classifier(tmp_path / "lin.onnx", 8, 3)
    registry = Registry(S3Store(bucket, "registry"))
    registry.publish(onnx_factory.manifest_for(path, "lin", "1"), path)
    registry.set_alias("lin", "production", "1")
    base = f"http://127.0.0.1:{SERVE_PORT}"
    process, log = serve(bucket, tmp_path, moto_server.endpoint)
    try:
        wait_answering(process, SERVE_PORT, f"{base}/v2/models/lin/ready", timeout=90, log=log)
        assert httpx.post(f"{base}/models/lin/predict", json={"inputs": [ROW]}).status_code == 200
    finally:
        stop_process(process)
    # The same bucket name on another S3 server, away: it has never served anything here.
    process, log = serve(bucket, tmp_path, f"http://127.0.0.1:{AWAY_PORT}")
    try:
        wait_answering(process, SERVE_PORT, f"{base}/v2/health/live", timeout=90, log=log)
        answer = httpx.post(f"{base}/models/lin/predict", json={"inputs": [ROW]}, timeout=30)
        assert answer.status_code in (404, 503), (answer.text, log.read_text()[-3000:])
        assert "from the local cache" not in log.read_text()
    finally:
        stop_process(process)


def test_records_are_kept_apart_by_endpoint(tmp_path: Path) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx", 8, 3)
    manifest = onnx_factory.manifest_for(path, "m", "1")
    ref = ModelRef("m", alias="production")
    one = RuntimeSettings.from_env({"AWS_ENDPOINT_URL": "http://minio-a:9000"}).s3_endpoint
    ServedRecords(tmp_path / "cache", "s3://b/reg", one).write(ref, manifest)
    assert ServedRecords(tmp_path / "cache", "s3://b/reg", one).read(ref) == manifest
    both = {"AWS_ENDPOINT_URL_S3": "http://minio-b:9000", "AWS_ENDPOINT_URL": one}
    other = RuntimeSettings.from_env(both).s3_endpoint  # the S3 one wins
    assert other == "http://minio-b:9000"
    assert ServedRecords(tmp_path / "cache", "s3://b/reg", other).read(ref) is None
    assert ServedRecords(tmp_path / "cache", "s3://b/reg", "").read(ref) is None  # AWS's own
