"""Data capture through the real predict handler (API Gateway HTTP API v2.0 events) on a
directory store: the sample rate, denied fields absent from what is written, every line kept
across an idle gap (frozen clock), bounded memory, objects never overwritten, binary tensors
skipped, the setting picked up within the alias TTL, and bad settings refused."""

from __future__ import annotations

import dataclasses
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from functions.predict.capture import CaptureTap
from functions.predict.service import PredictService
from functions.predict.telemetry import RequestMetrics
from functions.runtime.cache import ArtifactCache
from functions.runtime.capture.buffer import CaptureBuffer
from functions.runtime.capture.reader import capture_keys, captured_lines
from functions.runtime.capture.rows import rows_of
from functions.runtime.capture.setting import read_setting, set_capture
from functions.runtime.errors import BadRequest, ModelNotFound
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.served import ServedModel
from functions.runtime.store import LocalStore, ObjectStore
from tests import onnx_factory
from tests.functions.test_predict_events import http_event

MODEL = "churn"
FEATURES = ("age", "income", "tenure", "visits")
PREDICT = f"/models/{MODEL}/predict"
INFER = f"/v2/models/{MODEL}/infer"
EPOCH = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC


class FrozenClock:
    """monotonic and wall time that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return EPOCH + self.now


def publish(registry: Registry, tmp_path: Path, version: str = "1") -> None:
    path = onnx_factory.linear_classifier(tmp_path / f"{MODEL}-{version}.onnx", seed=int(version))
    manifest = onnx_factory.manifest_for(path, MODEL, version, labels=("stay", "churn", "maybe"))
    registry.publish(dataclasses.replace(manifest, features=FEATURES), path)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = Registry(LocalStore(tmp_path / "store"))
    publish(registry, tmp_path)
    return registry


def service(registry: Registry, tmp_path: Path, clock: FrozenClock | None = None) -> PredictService:
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"))
    served = ServedModel(pool, MODEL, ttl=3600)
    svc = PredictService(served, metrics=RequestMetrics(out=io.StringIO()))
    if clock is not None:
        buffer = CaptureBuffer(registry.store, clock=clock.monotonic, wall=clock.wall)
        svc.capture = CaptureTap(served, buffer, clock=clock.monotonic, wall=clock.wall)
    svc.warm()  # reads the capture setting, as a container's init does
    return svc


def predict(svc: PredictService, body: dict[str, Any], path: str = PREDICT) -> dict[str, Any]:
    response = svc.handle(http_event("POST", path, json.dumps(body)))
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])  # type: ignore[no-any-return]


def lines(store: ObjectStore) -> list[dict[str, Any]]:
    return list(captured_lines(store, MODEL))


def test_off_by_default_nothing_is_written(registry: Registry, tmp_path: Path) -> None:
    svc = service(registry, tmp_path)
    for _ in range(50):
        predict(svc, {"inputs": [[1, 2, 3, 4]]})
    svc.capture.flush()
    assert read_setting(registry.store, MODEL).on is False
    assert capture_keys(registry.store, MODEL) == []


def test_each_captured_line_holds_the_request_and_the_answer_sent(
    registry: Registry, tmp_path: Path
) -> None:
    set_capture(registry, MODEL, sample=1.0, actor="test")
    svc = service(registry, tmp_path)
    answer = predict(svc, {"inputs": [[1, 2, 3, 4]]})
    infer_body = {
        "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [4, 3, 2, 1]}]
    }
    infer_answer = predict(svc, infer_body, INFER)
    svc.capture.buffer.close()  # lines written; its timer thread (holding the store) ends
    found = lines(registry.store)
    assert [(d["route"], d["model"], d["version"]) for d in found] == [
        ("predict", MODEL, "1"),
        ("infer", MODEL, "1"),
    ]
    assert found[0]["request"] == {"inputs": [[1, 2, 3, 4]]}
    assert found[0]["response"] == answer
    assert (found[1]["request"], found[1]["response"]) == (infer_body, infer_answer)
    assert found[0]["request_id"] == "test-request"
    assert (
        found[0]["time"].endswith("Z")
        and found[0]["time"][:10] in capture_keys(registry.store, MODEL)[0]
    )


def test_the_sample_rate_holds_within_three_points_over_4000_requests(
    registry: Registry, tmp_path: Path
) -> None:
    set_capture(registry, MODEL, sample=0.2, actor="test")
    svc = service(registry, tmp_path)
    for i in range(4000):
        predict(svc, {"inputs": [[i, 2, 3, 4]]})
    svc.capture.buffer.close()  # lines written; its timer thread (holding the store) ends
    captured = len(lines(registry.store))
    # Binomial(4000, 0.2): one standard deviation is 0.63 points; 3 points is over 4.7 of them.
    assert abs(captured / 4000 - 0.2) <= 0.03, captured


def test_denied_fields_never_reach_the_store(registry: Registry, tmp_path: Path) -> None:
    set_capture(registry, MODEL, sample=1.0, deny=["email", "income", "secret"], actor="test")
    svc = service(registry, tmp_path)
    predict(
        svc,
        {
            "instances": [
                {"age": 1, "income": 91234, "tenure": 3, "visits": 4, "email": "ann@example.com"}
            ]
        },
    )
    predict(svc, {"inputs": [[1, 81234, 3, 4]]})  # income by position: nulled, not shifted
    predict(svc, {"inputs": {"age": [1], "income": [71234], "tenure": [3], "visits": [4]}})
    predict(
        svc,
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1, 4],
                    "datatype": "FP32",
                    "data": [1, 61234, 3, 4],
                    "parameters": {"secret": "tensor-secret", "unit": "cm"},
                }
            ],
            "parameters": {"secret": "body-secret", "trace": "t-1"},
            "email": "top@example.com",  # a top-level key: OIP's body takes any (simple's: 400)
        },
        INFER,
    )
    svc.capture.buffer.close()  # lines written; its timer thread (holding the store) ends
    raw = b"".join(registry.store.get_bytes(k) for k in capture_keys(registry.store, MODEL))
    for value in (b"example.com", b"91234", b"81234", b"71234", b"61234", b"email", b"income"):
        assert value not in raw, value
    assert b"secret" not in raw  # OIP parameters are where a caller's metadata goes
    requests = [d["request"] for d in lines(registry.store)]
    assert requests[0] == {"instances": [{"age": 1, "tenure": 3, "visits": 4}]}
    assert requests[1] == {"inputs": [[1, None, 3, 4]]}
    assert requests[2] == {"inputs": {"age": [1], "tenure": [3], "visits": [4]}}
    assert requests[3]["inputs"][0]["data"] == [1, None, 3, 4]
    assert requests[3]["inputs"][0]["parameters"] == {"unit": "cm"}
    assert requests[3]["parameters"] == {"trace": "t-1"} and "email" not in requests[3]
    # Exported, a denied feature is an empty column of every row, whatever form sent it (its
    # column was gone from the CSV when no request held it, and empty when one sent by position)
    manifest = registry.manifest(MODEL, "1")
    rows = [row for line in lines(registry.store) for row in rows_of(line, manifest)]
    assert [row["income"] for row in rows] == [None] * 4
    assert [row["age"] for row in rows] == [1] * 4


def test_no_line_is_lost_across_an_idle_gap(registry: Registry, tmp_path: Path) -> None:
    set_capture(registry, MODEL, sample=1.0, actor="test")
    clock = FrozenClock()
    svc = service(registry, tmp_path, clock)
    predict(svc, {"inputs": [[0, 2, 3, 4]]})  # the first request after idleness: at once
    assert len(lines(registry.store)) == 1
    for i in range(1, 4):  # a burst: held, at most a second
        clock.now += 0.1
        predict(svc, {"inputs": [[i, 2, 3, 4]]})
    assert len(lines(registry.store)) == 1 and svc.capture.buffer.held > 0
    clock.now += 600.0  # the container idles (frozen); a request comes ten minutes later
    predict(svc, {"inputs": [[9, 2, 3, 4]]})
    assert [d["request"]["inputs"][0][0] for d in lines(registry.store)] == [0, 1, 2, 3, 9]
    assert svc.capture.buffer.held == 0


def test_a_steady_stream_is_written_about_once_a_second(registry: Registry, tmp_path: Path) -> None:
    set_capture(registry, MODEL, sample=1.0, actor="test")
    clock = FrozenClock()
    svc = service(registry, tmp_path, clock)
    for i in range(250):  # 10 ms apart: 2.5 s
        predict(svc, {"inputs": [[i, 2, 3, 4]]})
        clock.now += 0.01
    keys = capture_keys(registry.store, MODEL)
    assert len(keys) == 3  # the first at once, then one a second
    # The first at once, then two windows each written when its first line is a second old
    # (101 lines of 10 ms); the last half second is held.
    assert len(lines(registry.store)) == 203
    svc.capture.flush()
    assert len(lines(registry.store)) == 250


def test_unsampled_requests_write_lines_held_past_a_second(
    registry: Registry, tmp_path: Path
) -> None:
    set_capture(registry, MODEL, sample=0.5, actor="test")
    clock = FrozenClock()
    svc = service(registry, tmp_path, clock)
    draws = iter([0.0, 0.0, 0.9, 0.9])  # captured, captured (held), then two not sampled
    svc.capture._draw = lambda: next(draws)
    for _ in range(2):
        predict(svc, {"inputs": [[1, 2, 3, 4]]})
        clock.now += 0.1
    assert len(lines(registry.store)) == 1
    predict(svc, {"inputs": [[1, 2, 3, 4]]})
    clock.now += 1.0
    predict(svc, {"inputs": [[1, 2, 3, 4]]})  # not captured, but ends the held line's second
    assert len(lines(registry.store)) == 2


def test_a_refused_request_writes_lines_held_past_a_second_too(
    registry: Registry, tmp_path: Path
) -> None:
    """Only a 200 ended a held line's second: with traffic turned to errors (422s, a 404) the
    lines stayed held, and a Lambda container reclaimed then lost them."""
    set_capture(registry, MODEL, sample=1.0, actor="test")
    clock = FrozenClock()
    svc = service(registry, tmp_path, clock)
    predict(svc, {"inputs": [[0, 2, 3, 4]]})  # at once
    clock.now += 0.1
    predict(svc, {"inputs": [[1, 2, 3, 4]]})  # held
    assert len(lines(registry.store)) == 1
    clock.now += 1.0
    refused = svc.handle(http_event("POST", PREDICT, json.dumps({"inputs": [[1, 2]]})))
    assert refused["statusCode"] == 422
    assert len(lines(registry.store)) == 2 and svc.capture.buffer.held == 0


def test_memory_is_bounded_lines_past_the_cap_are_dropped_and_counted(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    clock = FrozenClock()
    buffer = CaptureBuffer(store, clock=clock.monotonic, wall=clock.wall, max_bytes=1000)
    line = b'{"time":"x"}' + b" " * 88 + b"\n"  # 101 bytes
    buffer.add((MODEL, "1", "2027-01-15"), line)  # alone: written at once
    for _ in range(20):
        clock.now += 0.001
        buffer.add((MODEL, "1", "2027-01-15"), line)
        assert buffer.held <= 1000
    assert buffer.counts.dropped >= 1
    buffer.flush()
    assert buffer.counts.written + buffer.counts.dropped == 21
    written = sum(store.get_bytes(k).count(b"\n") for k in store.list_keys("capture"))
    assert written == buffer.counts.written


def test_objects_are_never_overwritten(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    clock = FrozenClock()
    first = CaptureBuffer(store, clock=clock.monotonic, wall=clock.wall)
    twin = CaptureBuffer(store, clock=clock.monotonic, wall=clock.wall)
    twin.writer = first.writer  # two restored copies of one snapshot, before renew()
    group = (MODEL, "1", "2027-01-15")
    first.add(group, b'{"n":1}\n')
    twin.add(group, b'{"n":2}\n')  # same second, same id, same sequence: renews its id
    keys = list(store.list_keys("capture"))
    assert len(keys) == 2 and twin.writer != first.writer
    assert sorted(store.get_bytes(k) for k in keys) == [b'{"n":1}\n', b'{"n":2}\n']


def test_binary_tensors_are_skipped_and_counted(registry: Registry, tmp_path: Path) -> None:
    set_capture(registry, MODEL, sample=1.0, actor="test")
    svc = service(registry, tmp_path)
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 16},
                }
            ]
        }
    ).encode()
    body = head + bytes(16)
    event = http_event(
        "POST",
        INFER,
        body,
        b64=True,
        headers={
            "content-type": "application/octet-stream",
            "inference-header-content-length": str(len(head)),
        },
    )
    assert svc.handle(event)["statusCode"] == 200
    svc.capture.flush()
    assert svc.capture.skipped == 1 and lines(registry.store) == []


def test_a_change_is_picked_up_within_the_alias_ttl(registry: Registry, tmp_path: Path) -> None:
    clock = FrozenClock()
    svc = service(registry, tmp_path, clock)
    predict(svc, {"inputs": [[1, 2, 3, 4]]})
    set_capture(registry, MODEL, sample=1.0, actor="test")  # another process turns it on
    predict(svc, {"inputs": [[1, 2, 3, 4]]})
    assert svc.capture.setting.on is False  # within the TTL: not read yet
    clock.now += svc.served.ttl
    predict(svc, {"inputs": [[5, 2, 3, 4]]})  # starts the background read
    svc.capture._reading.acquire(timeout=10)  # the read finished
    svc.capture._reading.release()
    assert svc.capture.setting.sample == 1.0
    clock.now += 5.0
    predict(svc, {"inputs": [[7, 2, 3, 4]]})
    # The read runs beside the request that started it, so that request may be captured or not
    # (a race the caller cannot see); every request after the read is, none before the change.
    assert [d["request"]["inputs"][0][0] for d in lines(registry.store)] in ([7], [5, 7])


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        (
            1.5,
            "sample must be from 0 to 1 (0.05 captures 5% of the answered requests, 0 turns "
            "capture off); got 1.5",
        ),
        (
            -0.1,
            "sample must be from 0 to 1 (0.05 captures 5% of the answered requests, 0 turns "
            "capture off); got -0.1",
        ),
        (
            math.nan,
            "sample must be from 0 to 1 (0.05 captures 5% of the answered requests, 0 "
            "turns capture off); got nan",
        ),
        (True, "sample must be a number from 0 to 1; got True"),
        ("0.5", "sample must be a number from 0 to 1; got '0.5'"),
        (  # rounded to 6 places it was stored as 0, capture off, and the answer a 200
            1e-7,
            "sample must be 0 (off) or at least 1e-06 (one request in a million); got 1e-07",
        ),
    ],
)
def test_a_bad_sample_is_refused_and_nothing_is_written(
    registry: Registry, sample: object, message: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        set_capture(registry, MODEL, sample=sample, actor="test")
    assert caught.value.message == message
    assert not registry.store.exists(f"models/{MODEL}/capture.json")


def test_an_unknown_model_or_a_bad_deny_list_is_refused(registry: Registry) -> None:
    with pytest.raises(ModelNotFound, match="model 'nope' not found"):
        set_capture(registry, "nope", sample=0.1, actor="test")
    with pytest.raises(BadRequest, match="deny must be a list of field names"):
        set_capture(registry, MODEL, sample=0.1, deny="email", actor="test")
    with pytest.raises(BadRequest, match="each denied field must be a name of 1-128 characters"):
        set_capture(registry, MODEL, sample=0.1, deny=["email", ""], actor="test")
    assert not registry.store.exists("models/nope/capture.json")


def test_turning_capture_off_keeps_the_deny_list(registry: Registry) -> None:
    set_capture(registry, MODEL, sample=0.5, deny=["email"], actor="ann")
    off = set_capture(registry, MODEL, sample=0.0, actor="bob")
    assert (off.on, off.deny, off.updated_by) == (False, frozenset({"email"}), "bob")
    again = set_capture(registry, MODEL, sample=0.1, actor="ann")
    assert again.deny == frozenset({"email"})
