"""Shadow traffic through the real predict handler (API Gateway HTTP API v2.0 events): the
caller is answered by the alias's version only, every sampled request is replayed to the shadow
afterwards by a real replay process (functions/shadow/process.py), and the agreement recorded
(the Prometheus families its results reach) equals an offline comparison of the same inputs
run through onnxruntime directly. The EMF of a replay: tests/functions/test_shadow_handler.py."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
import weakref
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from functions.predict import metric_names as m
from functions.predict.service import PredictService
from functions.predict.shadow import ProcessSink
from functions.predict.telemetry import RequestMetrics
from functions.runtime.cache import ArtifactCache
from functions.runtime.errors import AiaasError
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.served import ServedModel
from functions.runtime.settings import shadow_priority
from functions.runtime.store import LocalStore
from infra.local.metrics import GatewayMetrics
from tests import onnx_factory
from tests.functions.test_predict_events import body_of, http_event
from tests.publishing import flip_stored_model_byte, publish_linear

N = 400
PREDICT = "/models/m/predict"


def replay_env(tmp_path: Path, priority: str = "normal") -> dict[str, str]:
    """The replay process's environment: the test's store, its own cache, no EMF noise. At
    normal priority unless a test is about the default (idle): what it answers, not when it
    gets a CPU beside the suite's other xdist worker, is what the rest of the tests check."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "AIAAS_STORE": str(tmp_path / "store"),
        "AIAAS_CACHE_DIR": str(tmp_path / "replay-cache"),
        "AIAAS_DISABLE_METRICS": "true",
        "AIAAS_SHADOW_PRIORITY": priority,
    }


def serve(
    registry: Registry, tmp_path: Path, priority: str = "normal"
) -> tuple[PredictService, io.StringIO, GatewayMetrics]:
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"))
    out = io.StringIO()
    metrics = RequestMetrics(out=out)
    gateway = GatewayMetrics()
    metrics.observe(gateway)
    sink = ProcessSink(replay_env(tmp_path, priority), metrics)  # the one `aiaas serve` gets
    service = PredictService(ServedModel(pool, "m", ttl=3600), metrics=metrics, shadow_sink=sink)
    ended_with(service, sink)
    return service, out, gateway


def ended_with(service: PredictService, sink: ProcessSink) -> None:
    """`sink`'s replay process ends once `service` is gone, as `aiaas serve` retiring the
    function ends it: each test's process, its socket pair and reader thread lived until the
    pytest process exited, one interpreter more a test."""
    weakref.finalize(service, sink.close)


def registry_with(tmp_path: Path, labels: tuple[str, ...]) -> Registry:
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2"):
        publish_linear(registry, tmp_path, "m", version, seed=int(version), labels=labels)
    registry.set_alias("m", "production", "1")
    registry.set_shadow("m", "production", "2", 1.0)
    return registry


def requests() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.normal(size=(int(rng.integers(1, 4)), 4)).astype(np.float32) for _ in range(N)]


def send_all(service: PredictService, rows: list[np.ndarray]) -> None:
    for x in rows:
        response = service.handle(http_event("POST", PREDICT, json.dumps({"inputs": x.tolist()})))
        assert response["statusCode"] == 200, response["body"]
        assert response["headers"]["x-aiaas-version"] == "1"  # the shadow never answers
        assert body_of(response)["version"] == "1"
    assert service.shadow.drain(30)


def offline(registry: Registry, tmp_path: Path, rows: list[np.ndarray]) -> list[np.ndarray]:
    """Each version's logits for every request, straight from onnxruntime."""
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "offline"))
    answers = []
    for version in ("1", "2"):
        session = ort.InferenceSession(str(pool.load_version("m", version).path))
        answers.append(np.concatenate([session.run(None, {"x": x})[0] for x in rows]))
    return answers


def process_of(service: PredictService) -> subprocess.Popen[bytes] | None:
    """The service's replay process; None while none was needed (no copy made yet)."""
    sink = service.shadow.sink
    assert isinstance(sink, ProcessSink)
    return sink.channel.process if sink.channel is not None else None


def prometheus(gateway: GatewayMetrics, name: str) -> float:
    text = gateway.render()[0].decode()
    labels = '{model="m",shadow_version="2",version="1"}'
    (line,) = [x for x in text.splitlines() if x.startswith(name + labels)]
    return float(line.split()[-1])


def test_agreement_equals_an_offline_comparison_of_the_same_requests(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, ("a", "b", "c"))
    service, _, gateway = serve(registry, tmp_path)
    rows = requests()
    send_all(service, rows)
    served, shadow = offline(registry, tmp_path, rows)
    agreed = int((served.argmax(axis=1) == shadow.argmax(axis=1)).sum())
    assert 0 < agreed < len(served)  # two different models: some rows agree, some do not
    assert prometheus(gateway, m.SHADOW_AGREED) == agreed
    assert prometheus(gateway, m.SHADOW_ROWS) == len(served)
    assert prometheus(gateway, m.SHADOW_REQUESTS) == N
    assert prometheus(gateway, m.SHADOW_LATENCY + "_count") == N


def test_regressor_differences_equal_an_offline_comparison(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, ())
    service, _, gateway = serve(registry, tmp_path)
    rows = requests()
    send_all(service, rows)
    served, shadow = offline(registry, tmp_path, rows)
    diff = np.abs(served.astype(np.float64) - shadow.astype(np.float64))
    rel = diff / np.maximum(np.abs(served.astype(np.float64)), 1e-12)
    assert prometheus(gateway, m.SHADOW_MAX_ABS) == pytest.approx(diff.max(), rel=1e-12)
    assert prometheus(gateway, m.SHADOW_MAX_REL) == pytest.approx(rel.max(), rel=1e-12)
    assert prometheus(gateway, m.SHADOW_REQUESTS) == N
    assert m.SHADOW_AGREED + "_total{" not in gateway.render()[0].decode()


def test_a_shadow_that_cannot_answer_comparably_counts_errors_and_callers_never_see_it(
    tmp_path: Path,
) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    publish_linear(registry, tmp_path, "m", "1", seed=1, labels=("a", "b", "c"))
    other = onnx_factory.identity(tmp_path / "identity.onnx", shape=["N", 4])
    registry.publish(onnx_factory.manifest_for(other, "m", "2"), other)
    registry.set_alias("m", "production", "1")
    registry.set_shadow("m", "production", "2", 1.0)
    service, _, gateway = serve(registry, tmp_path)
    send_all(service, requests()[:20])
    assert prometheus(gateway, m.SHADOW_ERRORS) == 20


def test_the_replay_runs_in_another_process_at_the_lowest_priority(tmp_path: Path) -> None:
    service, _, _ = serve(registry_with(tmp_path, ("a", "b", "c")), tmp_path, priority="")
    send_all(service, requests()[:5])
    process = process_of(service)
    assert process is not None and process.pid != os.getpid()
    deadline = time.monotonic() + 60  # it sets its policy itself, after its imports
    while os.sched_getscheduler(process.pid) != os.SCHED_IDLE and time.monotonic() < deadline:
        time.sleep(0.01)
    assert os.sched_getscheduler(process.pid) == os.SCHED_IDLE


def test_aiaas_shadow_priority_normal_keeps_the_replay_at_the_default_policy(
    tmp_path: Path,
) -> None:
    service, _, _ = serve(registry_with(tmp_path, ("a", "b", "c")), tmp_path, priority="normal")
    send_all(service, requests()[:5])
    assert service.shadow.drain(60)  # it has answered: its policy is set by now
    process = process_of(service)
    assert process is not None
    assert os.sched_getscheduler(process.pid) == os.SCHED_OTHER
    with pytest.raises(AiaasError, match="AIAAS_SHADOW_PRIORITY must be idle or normal"):
        shadow_priority({"AIAAS_SHADOW_PRIORITY": "low"})
    assert (
        shadow_priority({}) == "idle" and shadow_priority({"AIAAS_SHADOW_PRIORITY": " "}) == "idle"
    )


def test_the_replay_runs_on_the_cpus_aiaas_shadow_cpus_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a CPU of its own the replay no longer costs callers' p99 (docs/rollout.md)."""
    cpu = max(os.sched_getaffinity(0))
    registry = registry_with(tmp_path, ("a", "b", "c"))
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"))
    metrics = RequestMetrics(out=io.StringIO())
    sink = ProcessSink({**replay_env(tmp_path, "idle"), "AIAAS_SHADOW_CPUS": str(cpu)}, metrics)
    service = PredictService(ServedModel(pool, "m", ttl=3600), metrics=metrics, shadow_sink=sink)
    ended_with(service, sink)
    send_all(service, requests()[:5])
    process = process_of(service)
    assert process is not None
    assert os.sched_getaffinity(process.pid) == {cpu}
    assert os.sched_getscheduler(process.pid) == os.SCHED_IDLE


def test_a_shadow_that_cannot_load_fails_each_copy_and_the_caller_never_loads_it(
    tmp_path: Path,
) -> None:
    registry = registry_with(tmp_path, ("a", "b", "c"))
    flip_stored_model_byte(registry.store, "m", "2")  # fails its checksum wherever it loads
    service, _, gateway = serve(registry, tmp_path)
    send_all(service, requests()[:20])  # every caller answered by version 1
    assert prometheus(gateway, m.SHADOW_ERRORS) == 20  # seen by a rollout's shadow stage
    assert [key for key in service.served.pool._models] == [("m", "1")]


def test_the_replay_runs_this_code_whatever_package_the_working_directory_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`aiaas serve` run in a project with a `functions/` package of its own (a SAM project's
    usual folder, or an aiaas clone older than the installed one): `python -m` put that folder
    first on the replay process's path, which then found no `functions.shadow` ("Error while
    finding module specification"), and every copy was dropped (hunt_install 1)."""
    project = tmp_path / "project"
    (project / "functions").mkdir(parents=True)
    (project / "functions" / "__init__.py").write_text("print('the project own functions')\n")
    monkeypatch.chdir(project)
    registry = registry_with(tmp_path, ("a", "b", "c"))
    service, _, gateway = serve(registry, tmp_path)
    send_all(service, requests()[:20])
    assert prometheus(gateway, m.SHADOW_REQUESTS) == 20
    assert m.SHADOW_DROPPED + "{" not in gateway.render()[0].decode()
