"""`aiaas serve` started while its S3 store hangs (packets dropped at the edge, not refused):
it listed the models for the S3 client's timeouts and retries (30 s x 5 by default) before
opening its port, so a liveness probe found nothing listening and the pod was restarted."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from functions.runtime.s3client import make_s3_client
from functions.runtime.s3store import S3Store
from infra.cli import local_commands
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
    monkeypatch.setattr(local_commands, "START_LIST_WAIT_S", 0.3)
    store = S3Store(s3_bucket, "registry", client=make_s3_client())
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="aiaas.gateway"):
        assert local_commands.listed_at_start(store, None) == ([], True)
    assert time.monotonic() - started < 2
    assert caplog.messages == [
        f"the model store is not reachable at start: {store.uri} did not answer within 0.3 s"
    ]


def test_a_store_that_answers_is_listed(s3_bucket: str, moto_server: MotoServer) -> None:
    store = S3Store(s3_bucket, "registry")
    store.put_bytes("models/iris/versions/1/manifest.json", b"{}")
    assert local_commands.listed_at_start(store, None) == (["iris"], False)
