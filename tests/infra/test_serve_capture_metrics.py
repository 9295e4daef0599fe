"""Data capture's counts on `/metrics` of a real `aiaas serve`, over real HTTP, read by
Prometheus' own text parser: lines written, lines dropped because the store could not take
them, and OIP binary requests skipped, each equal to the requests sent."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from functions.runtime.capture.reader import captured_lines
from functions.runtime.capture.setting import set_capture
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_serve import TOKEN, ServeProcess, start_serve
from tests.infra.test_serve_metrics import scrape, value

MODEL = "churn"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PREDICT = f"/models/{MODEL}/predict"
INFER = f"/v2/models/{MODEL}/infer"
FAILED, SKIPPED, WRITTEN = 5, 4, 6  # requests sent in each phase


def churn_store(tmp_path: Path, features: tuple[str, ...], deny: list[str] | None = None) -> Path:
    """A directory store holding churn:1 (a linear classifier of `features`), capture on."""
    store = tmp_path / "store"
    registry = Registry(LocalStore(store))
    path = onnx_factory.linear_classifier(tmp_path / "churn.onnx", seed=3)
    manifest = onnx_factory.manifest_for(path, MODEL, "1", labels=("stay", "churn", "maybe"))
    registry.publish(dataclasses.replace(manifest, features=features), path)
    set_capture(registry, MODEL, sample=1.0, deny=deny, actor="test")  # read at the load
    return store


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return churn_store(tmp_path, ("a", "b", "c", "d"))


@pytest.fixture
def server(store: Path) -> Iterator[ServeProcess]:
    yield from start_serve(store, env={"AIAAS_API_TOKEN": TOKEN}, headers=AUTH)


def predict(client: httpx.Client, times: int) -> None:
    for i in range(times):
        answer = client.post(PREDICT, json={"inputs": [[i, 1.0, 2.0, 3.0]]})
        assert answer.status_code == 200, answer.text


def infer_binary(client: httpx.Client, times: int) -> None:
    head = json.dumps(
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                     "parameters": {"binary_data_size": 16}}]}
    ).encode()  # fmt: skip
    headers = {
        "Inference-Header-Content-Length": str(len(head)),
        "Content-Type": "application/octet-stream",
    }
    for _ in range(times):
        answer = client.post(INFER, content=head + bytes(16), headers=headers)
        assert answer.status_code == 200, answer.text


def test_capture_counts_on_metrics_equal_the_requests_sent(
    store: Path, server: ServeProcess
) -> None:
    blocker = store / "capture"
    blocker.write_bytes(b"")  # a file where the capture folder goes: every write fails
    labels = {"model": MODEL, "version": "1"}

    def settled(name: str, family: str, want: float, **more: str) -> None:
        """`aiaas serve` writes beside the requests that follow (it does not hold them for
        the write): wait for the count the writes end at."""
        deadline = time.monotonic() + 10
        while value(scrape(server.base)[family], name, **labels, **more) != want:
            assert time.monotonic() < deadline, f"{name} not {want} within 10 s"
            time.sleep(0.05)

    with httpx.Client(base_url=server.base, headers=AUTH, timeout=30) as client:
        predict(client, FAILED - 1)  # the first written (and failing) at once, the rest held
        time.sleep(1.1)
        predict(client, 1)  # after a second of idleness: writes (fails) all held at once
        settled(
            "aiaas_capture_dropped_total", "aiaas_capture_dropped", FAILED, reason="write_failed"
        )
        infer_binary(client, SKIPPED)
        blocker.unlink()
        predict(client, WRITTEN - 1)
        time.sleep(1.1)
        predict(client, 1)
        settled("aiaas_capture_lines_total", "aiaas_capture_lines", WRITTEN)
    families = scrape(server.base)
    lines = value(families["aiaas_capture_lines"], "aiaas_capture_lines_total", **labels)
    dropped = families["aiaas_capture_dropped"]
    failed = value(dropped, "aiaas_capture_dropped_total", **labels, reason="write_failed")
    full = value(dropped, "aiaas_capture_dropped_total", reason="full")
    skipped = families["aiaas_capture_skipped"]
    binary = value(skipped, "aiaas_capture_skipped_total", **labels, reason="binary")
    assert (lines, failed, full, binary) == (WRITTEN, FAILED, 0, SKIPPED)
    requests = value(families["aiaas_requests"], "aiaas_requests_total", status_class="2xx")
    assert requests == FAILED + SKIPPED + WRITTEN
    assert len(list(captured_lines(LocalStore(store), MODEL))) == WRITTEN


def test_capture_off_shows_the_families_with_no_series(tmp_path: Path) -> None:
    store = tmp_path / "store"
    path = onnx_factory.linear_classifier(tmp_path / "churn.onnx", seed=3)
    Registry(LocalStore(store)).publish(onnx_factory.manifest_for(path, MODEL, "1"), path)
    for server in start_serve(store, env={"AIAAS_API_TOKEN": TOKEN}, headers=AUTH):
        with httpx.Client(base_url=server.base, headers=AUTH, timeout=30) as client:
            predict(client, 3)
            infer_binary(client, 2)
        families = scrape(server.base)
        for name in ("aiaas_capture_lines", "aiaas_capture_dropped", "aiaas_capture_skipped"):
            assert families[name] == []
    assert not (store / "capture").exists()
