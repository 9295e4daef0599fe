"""`aiaas serve` on a store that answers but takes long to walk (tens of thousands of keys), and
a miss that arrives while discovery is listing the store.

The store is moto's S3 server behind `tests/reliability/s3proxy.py`, which holds each chunk of
every reply `delay` seconds: a listing of 1,002 keys is two pages of several chunks, the
listing of the model folders one small reply. Found on a store of ~21,000 keys (22 pages, 8 s
on moto): serve said "not reachable" and served nothing, and a request for a served model
during a rescan was an instant 404 "no model 'm1' is served here".
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from functions.runtime.s3client import make_s3_client
from functions.runtime.s3store import S3Store
from infra.cli import serve_start
from infra.cli.serve_app import ServeConfig, build_app
from infra.local.gateway import GatewayRequest
from infra.local.server import ServerLimits
from tests.infra.test_serve_store_faults import S3Serve
from tests.reliability.s3proxy import DelayingProxy
from tests.s3server import MotoServer, wait_answering

PREDICT = ("POST", "/models/m1/predict")


@pytest.fixture
def proxy(moto_server: MotoServer) -> Iterator[DelayingProxy]:
    proxy = DelayingProxy(moto_server.port).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def walked(moto_server: MotoServer) -> str:
    """A bucket of m1's manifest and 1,001 more keys (two pages), written once for the tests
    that only read it: each write of them is ~1,000 round trips to moto."""
    bucket = f"slow-walk-{uuid.uuid4().hex[:12]}"
    make_s3_client().create_bucket(Bucket=bucket)
    publish_keys(bucket, 1001)
    return bucket


def publish_keys(bucket: str, extra: int) -> None:
    """m1's manifest (what discovery looks for) and `extra` more keys of its version."""
    store = S3Store(bucket, "registry")  # moto itself, not the proxy
    keys = ["models/m1/versions/1/manifest.json"]
    keys += [f"models/m1/versions/1/card/plot-{i:04d}.png" for i in range(extra)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: store.put_bytes(key, b"{}"), keys))


def through(proxy: DelayingProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)


def gateway_of(bucket: str, **more: bool) -> ServeConfig:
    """Serving every model of the store, none listed at start."""
    return ServeConfig(
        None, f"s3://{bucket}/registry", {}, None, "", None, ServerLimits(), listed=(), **more
    )  # fmt: skip


def test_a_store_slow_to_walk_is_reachable_and_its_models_come_in_the_background(
    walked: str,
    proxy: DelayingProxy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    s3_bucket = walked  # two pages
    through(proxy, monkeypatch)
    proxy.delay = 0.4  # the folders' listing ~0.8 s, the walk (two pages of chunks) ~4 s
    monkeypatch.setattr(serve_start, "START_LIST_WAIT_S", 2.0)
    store = S3Store(s3_bucket, "registry", client=make_s3_client())
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="aiaas.gateway"):
        start = serve_start.listed_at_start(store, None)
    assert time.monotonic() - started < 3
    assert start == serve_start.StartListing([], slow=True, folders=1)
    assert caplog.messages == [
        f"listing the models of {store.uri} is taking longer than 2 s (1 model folders): they "
        "are served once the listing completes"
    ]
    # Each worker finishes the walk on its own, routing m1 with no request made.
    gateway = build_app(gateway_of(s3_bucket, listing=True)).gateway
    deadline = time.monotonic() + 30
    while gateway.route(*PREDICT) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gateway.route(*PREDICT) is not None


def test_a_miss_during_a_scan_waits_for_it_and_one_after_it_is_answered_from_it(
    s3_bucket: str, proxy: DelayingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_keys(s3_bucket, 0)
    through(proxy, monkeypatch)
    gateway = build_app(gateway_of(s3_bucket)).gateway
    assert gateway.route(*PREDICT) is None and gateway.on_miss is not None
    proxy.delay = 1.0  # the scan's one listing
    nosuch = GatewayRequest("POST", "/models/nosuch/predict", "", [], b"{}")
    answers = []
    first = threading.Thread(target=lambda: answers.append(gateway.handle(nosuch)))
    first.start()
    deadline = time.monotonic() + 10
    while proxy.upstream_bytes == 0 and time.monotonic() < deadline:  # the scan is listing
        time.sleep(0.01)
    assert proxy.upstream_bytes > 0
    # A miss for m1 now: it waits for that scan (got an instant "no model 'm1'"), then routes.
    assert gateway.on_miss() is True
    assert gateway.route(*PREDICT) is not None
    first.join(10)
    assert [a.status for a in answers] == [404]
    # A miss right after a finished scan is answered from it, asking the store nothing.
    sent = proxy.upstream_bytes
    started = time.monotonic()
    assert gateway.on_miss() is False
    assert time.monotonic() - started < 0.5 and proxy.upstream_bytes == sent


def test_serve_says_a_slow_listing_is_slow_and_serves_its_models_once_listed(
    walked: str, proxy: DelayingProxy, tmp_path: Path
) -> None:
    """The real CLI, its 5 s wait: the folders answer in ~2 s, the walk takes ~10 s."""
    s3_bucket = walked
    proxy.delay = 1.0
    server = S3Serve(s3_bucket, proxy, tmp_path, {})
    try:
        wait_answering(server.process, server.port, f"{server.base}/v2/health/live", log=server.log)
        banner = server.output()
        assert "not reachable" not in banner
        assert (
            f"no models yet: listing the 1 model folders of s3://{s3_bucket}/registry is taking "
            "longer than 5 s; they are served once it completes (a call meanwhile waits for it)"
        ) in banner
        # A call during the worker's walk waits for it: then m1 is among the served.
        answer = httpx.post(f"{server.base}/models/nosuch/predict", json={}, timeout=60)
        assert answer.status_code == 404
        assert "(models: m1)" in answer.json()["error"], answer.text
    finally:
        server.stop()
