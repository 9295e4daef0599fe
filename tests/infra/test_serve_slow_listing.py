"""`aiaas serve`: a miss that arrives while discovery is listing the store.

The store is moto's S3 server behind `tests/reliability/s3proxy.py`, which holds each chunk of
every reply `delay` seconds. Found on a store of ~21,000 keys (a rescan of 6 s): a request for
a served model during a rescan was an instant 404 "no model 'm1' is served here".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from functions.runtime.s3store import S3Store
from infra.cli.local_commands import ServeConfig, build_app
from infra.local.gateway import GatewayRequest
from infra.local.server import ServerLimits
from tests.reliability.s3proxy import DelayingProxy
from tests.s3server import MotoServer

PREDICT = ("POST", "/models/m1/predict")


@pytest.fixture
def proxy(moto_server: MotoServer) -> Iterator[DelayingProxy]:
    proxy = DelayingProxy(moto_server.port).start()
    yield proxy
    proxy.stop()


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
