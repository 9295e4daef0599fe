"""`aiaas serve` started while S3 answers 503 SlowDown or 500 InternalError to every request:
S3's failure for now, as its silence is, so served as a store not reachable yet (docs/serve.md:
"serve starts all the same"), not an exit that a supervisor turns into a crash loop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.runtime.s3store import S3Store
from tests.functions.test_predict_events import MODEL
from tests.infra.test_serve_operator import _predict, publish_linear
from tests.infra.test_serve_store_faults import S3Serve
from tests.reliability.s3faults import FaultyS3Proxy
from tests.s3server import MotoServer


@pytest.fixture
def faults(moto_server: MotoServer) -> Iterator[FaultyS3Proxy]:
    proxy = FaultyS3Proxy(moto_server.port).start()
    yield proxy
    proxy.stop()


@pytest.mark.parametrize("fault", ["slowdown", "internal_errors"])
def test_s3_failing_at_start_serves_once_it_answers_without_a_restart(
    fault: str, s3_store: S3Store, faults: FaultyS3Proxy, tmp_path: Path
) -> None:
    publish_linear(s3_store, tmp_path, MODEL)
    setattr(faults, fault, 1_000_000)  # every request, until cleared
    server = S3Serve(s3_store.bucket, faults, tmp_path, {"AIAAS_S3_MAX_ATTEMPTS": "2"})
    try:
        server.wait_live()
        assert server.get("/v2/health/live") == (200, {"live": True}), server.output()
        assert server.get("/v2/health/ready")[0] == 503
        faults.clear()
        server.wait_loaded(MODEL)  # picked up on first call once S3 answers
        assert _predict(server.base, MODEL)[0] == 200
    finally:
        server.stop()
    store = f"s3://{s3_store.bucket}/registry"
    assert f"  no models yet: the store {store} is not reachable now" in server.output()
    warning = next(line["message"] for line in server.log_lines() if line["level"] == "WARNING")
    code = {"slowdown": "SlowDown", "internal_errors": "InternalError"}[fault]
    assert warning.startswith("the model store is not reachable at start: "), warning
    assert code in warning
    assert server.process.returncode == 0
