"""What `aiaas serve` asks S3 for requests a client may repeat without end: a version never
published, and the server's readiness. The real CLI in a subprocess on moto's S3 server, each
request it sends counted at a recording proxy (tests/reliability/s3faults.py)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from tests import onnx_factory
from tests.functions.test_predict_events import MODEL
from tests.infra.test_serve_operator import ROW, publish_linear
from tests.infra.test_serve_store_faults import s3_serve
from tests.reliability.s3faults import FaultyS3Proxy
from tests.s3server import MotoServer

TTL = 4.0  # AIAAS_ALIAS_TTL: how long a version's 404 is remembered
NOT_FOUND = {"error": f"version '999' of model '{MODEL}' not found"}


def _asks(client: httpx.Client, version: str) -> list[tuple[int, object]]:
    """The four routes naming a pinned version: predict, infer, metadata and readiness."""
    row = {"name": "x", "shape": [1, 64], "datatype": "FP32", "data": ROW}
    answers = [
        client.post(f"/models/{MODEL}/versions/{version}/predict", json={"inputs": [ROW]}),
        client.post(f"/v2/models/{MODEL}/versions/{version}/infer", json={"inputs": [row]}),
        client.get(f"/v2/models/{MODEL}/versions/{version}"),
        client.get(f"/v2/models/{MODEL}/versions/{version}/ready"),
    ]
    return [(answer.status_code, answer.json()) for answer in answers]


def test_a_version_never_published_is_asked_of_s3_once_a_ttl_and_found_once_published(
    s3_store: S3Store, moto_server: MotoServer, tmp_path: Path
) -> None:
    """Each request for it read its manifest and the prune record: 2 GETs a request, without
    end (a client looping on a typo, or polling for the version a CI is about to publish)."""
    publish_linear(s3_store, tmp_path, MODEL)
    recorder = FaultyS3Proxy(moto_server.port).start()  # forwards all, records each request
    try:
        with (
            s3_serve(s3_store, recorder, tmp_path, AIAAS_ALIAS_TTL=str(TTL)) as server,
            httpx.Client(base_url=server.base, timeout=30) as client,
        ):
            recorder.seen.clear()
            first = time.monotonic()
            answers = [answer for _ in range(5) for answer in _asks(client, "999")]
            asked = [p for _, p in recorder.seen if "/999/" in p or "pruned.json" in p]
            # The same 404 each time, the first one's two reads only.
            assert answers == [(404, NOT_FOUND)] * 20
            assert len(asked) == 2, asked
            path = onnx_factory.linear_classifier(tmp_path / "999.onnx", features=64)
            Registry(s3_store).publish(onnx_factory.manifest_for(path, MODEL, "999"), path)
            while (found := _asks(client, "999"))[0][0] == 404:
                assert time.monotonic() - first < TTL + 10, found
                time.sleep(0.2)
            assert [status for status, _ in found] == [200] * 4
    finally:
        recorder.stop()


def test_readiness_reuses_a_good_answer_and_asks_one_listing_of_one_key(
    s3_store: S3Store, moto_server: MotoServer, tmp_path: Path
) -> None:
    """Each probe of /v2/health/ready walked every page of the model folders: one LIST (priced
    as a PUT) a probe, more than the reference workload's every other S3 request."""
    publish_linear(s3_store, tmp_path, MODEL)
    recorder = FaultyS3Proxy(moto_server.port).start()
    try:
        with s3_serve(s3_store, recorder, tmp_path) as server:
            recorder.seen.clear()
            assert [server.get("/v2/health/ready") for _ in range(10)] == [
                (200, {"ready": True})
            ] * 10
            listings = [p for m, p in recorder.seen if m == "GET" and "list-type=2" in p]
    finally:
        recorder.stop()
    assert len(listings) == 1, recorder.seen
    assert "max-keys=1" in listings[0]
