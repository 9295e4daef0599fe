"""`aiaas serve` started while its S3 store hangs (packets dropped at the edge, not refused):
it listed the models for the S3 client's timeouts and retries (30 s x 5 by default) before
opening its port, so a liveness probe found nothing listening and the pod was restarted."""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.runtime.s3client import make_s3_client
from functions.runtime.s3store import S3Store
from infra.cli import serve_start
from tests.infra.test_serve_store_faults import S3Serve
from tests.reliability.s3proxy import DelayingProxy
from tests.s3server import MotoServer


@pytest.fixture
def hung(moto_server: MotoServer) -> Iterator[DelayingProxy]:
    proxy = DelayingProxy(moto_server.port).start()
    proxy.delay = 60.0  # every reply held: a store that accepts and never answers
    yield proxy
    proxy.stop()  # the listing still waiting ends with it


def test_a_hung_store_is_served_as_one_away_after_a_bounded_wait(
    s3_bucket: str,
    hung: DelayingProxy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", hung.endpoint)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setattr(serve_start, "START_LIST_WAIT_S", 0.3)
    store = S3Store(s3_bucket, "registry", client=make_s3_client())
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="aiaas.gateway"):
        assert serve_start.listed_at_start(store, None) == serve_start.StartListing([], True)
    assert time.monotonic() - started < 2
    assert caplog.messages == [
        f"the model store is not reachable at start: {store.uri} did not answer within 0.3 s"
    ]


def test_a_store_that_answers_is_listed(s3_bucket: str, moto_server: MotoServer) -> None:
    store = S3Store(s3_bucket, "registry")
    store.put_bytes("models/iris/versions/1/manifest.json", b"{}")
    assert serve_start.listed_at_start(store, None) == serve_start.StartListing(["iris"])


def test_a_stop_while_the_store_is_listed_is_a_clean_stop(
    s3_bucket: str, hung: DelayingProxy, tmp_path: Path
) -> None:
    """SIGTERM before the server took the signals over (Kubernetes stopping a pod still
    starting) ended it with Python's default: exit 143 and not a line said."""
    server = S3Serve(s3_bucket, hung, tmp_path, {"AIAAS_LOG_FORMAT": "json"})
    try:
        deadline = time.monotonic() + 30
        while hung.upstream_bytes == 0 and time.monotonic() < deadline:  # listing the models
            assert server.process.poll() is None, server.log.read_text()
            time.sleep(0.02)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=10) == 0
    finally:
        server.stop()
    (line,) = [json.loads(line) for line in server.log.read_text().splitlines()]
    assert (line["message"], line["logger"]) == ("aiaas serve: stopped", "aiaas.serve")
