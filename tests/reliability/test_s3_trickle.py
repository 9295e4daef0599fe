"""A store that trickles (`s3faults.py`'s `trickle`: a GET's body a few bytes at a time, within
every read timeout, never finishing in time): a download has a deadline (download_deadline.py).

Before, nothing but Lambda's own timeout ended a cold load of such a model (killed with nothing
logged: API Gateway's bare 5xx), and `aiaas pull` hung for as long as the trickle lasted (the
hunt's 40 MB at 1 KB/0.5 s: ~6 hours). Each case here runs in a thread given a bound, so that
the old code fails the test in seconds instead of hanging it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.runtime.download_deadline import SETTING, configured, current, for_context
from functions.runtime.errors import AiaasError
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from infra.cli.main import main
from infra.local.functions import LambdaContext, load_handler
from tests import onnx_factory
from tests.functions.test_predict_errors import ROW
from tests.functions.test_predict_events import MODEL, body_of, http_event
from tests.reliability.s3faults import FaultyS3Proxy, proxied
from tests.s3server import MotoServer

BOUND_S = 20.0  # what a case may take before it is a hang: the old code's trickle ran ~80 s


@pytest.fixture
def faults(
    s3_store: S3Store, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[FaultyS3Proxy]:
    registry = Registry(s3_store)
    for version, classes in (("1", 10), ("2", 400)):  # 2: ~100 KB, ~80 s at ~1.3 KB/s
        path = onnx_factory.linear_classifier(
            tmp_path / f"{version}.onnx", features=64, classes=classes
        )
        registry.publish(onnx_factory.manifest_for(path, MODEL, version), path)
    registry.set_alias(MODEL, "production", "1", actor="ci")
    with proxied(moto_server.port, monkeypatch) as proxy:
        proxy.trickle = "/versions/2/model.onnx"
        yield proxy


def bounded(work: Callable[[], Any]) -> tuple[Any, float]:
    """`work()`'s result and how long it took; fails the test if it takes over BOUND_S."""
    done: list[Any] = []
    start = time.monotonic()
    thread = threading.Thread(target=lambda: done.append(work()), daemon=True)
    thread.start()
    thread.join(BOUND_S)
    assert done, f"still downloading after {BOUND_S:g} s: no deadline ended the trickle"
    return done[0], time.monotonic() - start


def test_a_cold_load_that_cannot_finish_in_time_is_a_503_with_retry_after_in_time(
    s3_store: S3Store,
    faults: FaultyS3Proxy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {
        "AIAAS_MODEL": MODEL,
        "AIAAS_MODEL_SELECTOR": "@production",
        "AIAAS_STORE": s3_store.uri,  # through the proxy: its client is built at init
        "AIAAS_CACHE_DIR": str(tmp_path / "cache"),
    }
    handler = load_handler("functions.predict.handler.handler", env)  # 1 loaded at init
    context = LambdaContext("predict", timeout_s=4.0)  # a 4 s Timeout: 1 s kept to answer
    pinned = http_event("POST", f"/models/{MODEL}/versions/2/predict", ROW)

    response, took = bounded(lambda: handler(pinned, context))  # loads 2: a cold load
    assert response["statusCode"] == 503, response
    assert response["headers"]["retry-after"] == "5"
    assert context.get_remaining_time_in_millis() > 0, took  # answered before the timeout
    assert 2.5 < took < 4.0, took
    error = body_of(response)["error"]
    assert error.startswith("model.onnx could not be read from the model store in time ("), error
    assert "s3://" not in error  # a 5xx names no store
    # The log line on stdout (the function's JSON logger), or in pytest's log capture where an
    # earlier test in the same worker left the `aiaas` logger propagating.
    said = capsys.readouterr().out + caplog.text
    logged = next(line for line in said.splitlines() if "deadline" in line)
    where = f"{s3_store.uri}/models/{MODEL}/versions/2/model.onnx"
    assert re.search(
        rf"{re.escape(where)}: [\d,]+ of [\d,]+ bytes read in [23]\.\d s \([\d.]+ [KM]?B/s\), "
        r"past the download's deadline of [23]\.\d s \(the invocation's [34]\.\d s left, "
        r"less 1 s\); "
        r"at that rate the [\d,]+ bytes take [\d,]+ s",
        logged,
    ), logged
    assert faults.trickled > 0  # it did trickle: some bytes came, not a stall
    faults.clear()
    response, _ = bounded(lambda: handler(pinned, LambdaContext("predict", timeout_s=4.0)))
    assert (response["statusCode"], body_of(response)["version"]) == (200, "2")


def test_a_pull_from_a_trickling_store_ends_by_the_setting_saying_why(
    s3_store: S3Store,
    faults: FaultyS3Proxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(SETTING, "1.5")
    local = tmp_path / "edge"
    pull = ["--store", str(local), "pull", f"{MODEL}:2", "--from", s3_store.uri, "--no-progress"]
    code, took = bounded(lambda: main(pull))
    err = capsys.readouterr().err.strip()
    assert code == 1 and took < 5.0, (took, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    where = f"{s3_store.uri}/models/{MODEL}/versions/2/model.onnx"
    assert err.startswith(f"aiaas pull: error: {where}: "), err
    assert f"past the download's deadline of 1.5 s ({SETTING})" in err
    assert re.search(r"bytes read in 1\.\d s \([\d.]+ [KM]?B/s\)", err), err
    assert not (local / "models").exists() or not any((local / "models").rglob("*.onnx"))
    faults.clear()
    assert main(pull) == 0


def test_the_deadline_is_the_time_left_less_a_margin_or_the_setting_or_its_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def seconds(timeout_s: float) -> float:
        deadline = for_context(LambdaContext("f", timeout_s=timeout_s))
        assert deadline is not None
        return round(deadline.seconds, 1)

    monkeypatch.delenv(SETTING, raising=False)
    assert (seconds(3.0), seconds(20.0), seconds(60.0)) == (2.0, 16.0, 55.0)
    monkeypatch.setenv(SETTING, "10")
    assert seconds(60.0) == 10.0  # the setting, sooner than the time left
    monkeypatch.delenv(SETTING)
    assert for_context(None) is None  # no Lambda context: each file's own deadline
    # `aiaas serve`'s: its process outlives the request's 504, and the load goes on to serve
    # the next ones (a request-bound deadline threw each try of a big model away)
    assert for_context(LambdaContext("f", timeout_s=30.0, serving=True)) is None
    default, big = configured(40_000_000), configured(10_000_000_000)
    assert default is not None and big is not None
    assert (default.seconds, big.seconds) == (900.0, 10_000.0)  # a big file: 1 MB/s of it
    monkeypatch.setenv(SETTING, "0")
    assert current(10) is None  # none at all
    monkeypatch.setenv(SETTING, "soon")
    with pytest.raises(AiaasError, match=f"{SETTING} must be a number"):
        current(10)
