"""What an operator of `aiaas serve` meets when the store or the cache misbehaves.

Each test runs the real CLI in a subprocess on loopback; S3 is moto's server behind a TCP proxy
(`tests/reliability/s3proxy.py`) that is stopped for an outage and started again.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from functions.runtime.drift import baseline as drift_baseline
from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.drift.snapshots import snapshot_prefix
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_events import MODEL, publish_digits
from tests.infra.test_serve import ROOT, ServeProcess
from tests.infra.test_serve_operator import _predict, publish_linear, run_serve, serve_command
from tests.reliability.s3faults import FaultyS3Proxy
from tests.reliability.s3proxy import DelayingProxy
from tests.s3server import MotoServer, free_port, stop_process, wait_answering

# One try of one second for each S3 call: an outage is seen at once, not after retries.
FAST_FAILING_S3 = {"AIAAS_S3_MAX_ATTEMPTS": "1", "AIAAS_S3_CONNECT_TIMEOUT": "1"}


class S3Serve:
    """`aiaas serve` on `s3://<bucket>/registry`, reaching S3 through `proxy`."""

    def __init__(
        self, bucket: str, proxy: DelayingProxy | FaultyS3Proxy, workdir: Path,
        env: Mapping[str, str],
    ) -> None:  # fmt: skip
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"serve-{self.port}.log"
        command = serve_command(Path(), "--port", str(self.port))
        command[command.index("--store") + 1] = f"s3://{bucket}/registry"
        full_env = {
            **os.environ,
            "AWS_ENDPOINT_URL": proxy.endpoint,
            "AIAAS_CACHE_DIR": str(workdir / "cache"),
            **env,
        }
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=out, stderr=out)

    def wait_loaded(self, model: str, timeout: float = 60) -> None:
        """Until `model` is loaded (its readiness loads it; no prediction is made)."""
        url = f"{self.base}/v2/models/{model}/ready"
        wait_answering(self.process, self.port, url, timeout=timeout, log=self.log)

    def wait_live(self, timeout: float = 30) -> None:
        """Until liveness answers 200 (the store may still be away), or the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            with contextlib.suppress(httpx.TransportError):
                if self.get("/v2/health/live")[0] == 200:
                    return
            time.sleep(0.05)

    def get(self, path: str) -> tuple[int, Any]:
        answer = httpx.get(f"{self.base}{path}", timeout=30)
        return answer.status_code, answer.json()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines (the banner and the stop line are plain text)."""
        return [orjson.loads(line) for line in self.output().splitlines() if line.startswith("{")]

    def stop(self) -> None:
        stop_process(self.process, grace=20)


@pytest.fixture
def proxy(moto_server: MotoServer) -> Iterator[DelayingProxy]:
    proxy = DelayingProxy(moto_server.port).start()
    yield proxy
    proxy.stop()


@contextlib.contextmanager
def s3_serve(
    s3_store: S3Store, proxy: DelayingProxy | FaultyS3Proxy, workdir: Path, **env: str
) -> Iterator[S3Serve]:
    server = S3Serve(s3_store.bucket, proxy, workdir, env)
    try:
        server.wait_loaded(MODEL)
        yield server
    finally:
        server.stop()


# ---- drift monitoring through a store outage ---------------------------------------------


def put_baseline(store: S3Store, model: str) -> None:
    rows = np.random.default_rng(0).normal(size=(500, 64)).astype(np.float32)
    base = drift_baseline.build(rows, tuple(f"x_{i}" for i in range(64)))
    store.put_bytes(f"{version_prefix(model, '1')}/{BASELINE_FILE}", base.to_json().encode())


def test_drift_monitoring_resumes_after_s3_was_away_at_the_first_request(
    s3_store: S3Store, proxy: DelayingProxy, tmp_path: Path
) -> None:
    """The baseline is read at a version's first request: S3 away then switched drift
    monitoring off for that version until a restart, and said so in a plain-text line."""
    publish_linear(s3_store, tmp_path, MODEL)
    put_baseline(s3_store, MODEL)
    env = {**FAST_FAILING_S3, "AIAAS_DRIFT_FLUSH_SECONDS": "1"}
    with s3_serve(s3_store, proxy, tmp_path, **env) as server:
        proxy.stop()
        assert _predict(server.base, MODEL)[0] == 200  # served on; its baseline not read
        proxy.start()
        time.sleep(1.1)  # the baseline is read again at most once an interval
        for _ in range(4):
            assert _predict(server.base, MODEL)[0] == 200
        time.sleep(2.5)  # the server writes them on its timer, an interval after its last write
        keys = list(s3_store.list_keys(snapshot_prefix(MODEL, "1")))
        assert keys, server.output()
        docs = [orjson.loads(s3_store.get_bytes(key)) for key in keys]
        assert sum(doc["rows"] for doc in docs) == 4  # every row answered since it was read
    drift_lines = [line for line in server.log_lines() if ": drift " in line["message"]]
    assert [(line["level"], line["logger"]) for line in drift_lines] == [
        ("WARNING", "aiaas.drift"),
        ("INFO", "aiaas.drift"),
    ], server.output()
    assert drift_lines[0]["message"].startswith(
        f"{MODEL}:1: drift not monitored yet: its baseline could not be read (S3 error on "
    )
    assert drift_lines[0]["message"].endswith("; tried again every 1 s")
    assert drift_lines[1]["message"] == f"{MODEL}:1: drift monitored: its baseline was read"
    plain = [line for line in server.output().splitlines() if not line.startswith("{")]
    assert not [line for line in plain if "drift" in line]


def test_drift_counts_not_written_while_s3_is_away_are_logged_once(
    s3_store: S3Store, proxy: DelayingProxy, tmp_path: Path
) -> None:
    """A flush that fails was a warning each interval (each minute, for each version) for as
    long as the store was away, and nothing said when writes came back."""
    publish_linear(s3_store, tmp_path, MODEL)
    put_baseline(s3_store, MODEL)
    env = {**FAST_FAILING_S3, "AIAAS_DRIFT_FLUSH_SECONDS": "0.5"}
    with s3_serve(s3_store, proxy, tmp_path, **env) as server:
        assert _predict(server.base, MODEL)[0] == 200  # the baseline read: monitored
        proxy.stop()
        for _ in range(4):  # the server's timer flushes each one's row: each write fails
            time.sleep(0.6)
            assert _predict(server.base, MODEL)[0] == 200
        proxy.start()
        time.sleep(0.6)
        assert _predict(server.base, MODEL)[0] == 200
        time.sleep(1.5)  # its row is written by the next flush
        assert list(s3_store.list_keys(snapshot_prefix(MODEL, "1")))
    said = [
        (line["level"], line["message"])
        for line in server.log_lines()
        if line["logger"] == "aiaas.drift" and "written" in line["message"]
    ]
    assert [level for level, _ in said] == ["WARNING", "INFO"], server.output()
    assert said[0][1].startswith(f"drift counts of {MODEL}:1 not written: S3 error on ")
    assert said[0][1].endswith("(said once until a write succeeds; counts are dropped meanwhile)")
    dropped = said[1][1].removeprefix("drift counts written again; ")
    assert dropped.endswith(" snapshots dropped meanwhile") and int(dropped.split()[0]) >= 2


def test_a_version_without_a_baseline_is_looked_up_once_an_interval(
    s3_store: S3Store, moto_server: MotoServer, tmp_path: Path
) -> None:
    """A missing baseline is asked for again an interval later (`aiaas baseline` may add one
    while the version is served), not on each request, and logs nothing."""
    publish_linear(s3_store, tmp_path, MODEL)
    recorder = FaultyS3Proxy(moto_server.port).start()  # forwards all, records each request
    try:
        with s3_serve(s3_store, recorder, tmp_path, AIAAS_DRIFT_FLUSH_SECONDS="60") as server:
            for _ in range(4):
                assert _predict(server.base, MODEL)[0] == 200
    finally:
        recorder.stop()
    asked = [path for method, path in recorder.seen if BASELINE_FILE in path]
    assert len(asked) == 1, recorder.seen
    assert not list(s3_store.list_keys(f"monitoring/{MODEL}"))
    assert "drift" not in server.output()


# ---- readiness and the control plane while S3 is away ------------------------------------

NOT_REACHABLE = "the model store is not reachable"


def test_s3_away_readiness_and_the_control_plane_say_so_and_the_log_says_it_once(
    s3_store: S3Store, proxy: DelayingProxy, tmp_path: Path
) -> None:
    """Both said "model is not available" (no model was asked about), and a failed readiness
    check logged nothing: the operator could not tell a broken model from a store away."""
    publish_linear(s3_store, tmp_path, MODEL)
    with s3_serve(s3_store, proxy, tmp_path, **FAST_FAILING_S3) as server:
        proxy.stop()
        for _ in range(3):  # a probe every few seconds
            assert server.get("/v2/health/ready") == (
                503, {"error": NOT_REACHABLE, "ready": False}
            )  # fmt: skip
        assert server.get("/control/models") == (503, {"error": NOT_REACHABLE})
        assert _predict(server.base, MODEL)[0] == 200  # the loaded model serves on
        proxy.start()
        assert server.get("/v2/health/ready") == (200, {"ready": True})
    health = [line for line in server.log_lines() if line["logger"] == "aiaas.health"]
    assert [line["level"] for line in health] == ["WARNING", "INFO"], server.output()
    store = f"s3://{s3_store.bucket}/registry"
    assert health[0]["message"].startswith(
        f"not ready: the model store {store} cannot be listed: S3 error on {store}/models: "
        "Could not connect to the endpoint URL"
    )
    assert health[0]["message"].endswith("(said once until the store answers again)")
    assert health[1]["message"] == f"ready: the model store {store} answers again"


def test_s3_away_at_start_serves_once_it_answers_without_a_restart(
    s3_store: S3Store, proxy: DelayingProxy, tmp_path: Path
) -> None:
    """`aiaas serve` exited 1 when the store's first listing failed: under a supervisor, a
    restart loop for as long as S3 (or the network at the edge) was away."""
    publish_linear(s3_store, tmp_path, MODEL)
    proxy.stop()
    server = S3Serve(s3_store.bucket, proxy, tmp_path, FAST_FAILING_S3)
    try:
        server.wait_live()
        assert server.get("/v2/health/live") == (200, {"live": True}), server.output()
        assert server.get("/v2/health/ready") == (503, {"error": NOT_REACHABLE, "ready": False})
        assert server.get(f"/v2/models/{MODEL}/ready") == (
            503, {"error": "cannot look up new models: the model store is not reachable"}
        )  # fmt: skip
        proxy.start()
        server.wait_loaded(MODEL)  # picked up on first call once the store answers
        assert _predict(server.base, MODEL)[0] == 200
    finally:
        server.stop()
    store = f"s3://{s3_store.bucket}/registry"
    assert (
        f"  no models yet: the store {store} is not reachable now; each model is picked up "
        "on first call once it answers (/v2/health/ready is 503 until then)"
    ) in server.output().splitlines()
    warning = next(line["message"] for line in server.log_lines() if line["level"] == "WARNING")
    assert warning.startswith(f"the model store is not reachable at start: S3 error on {store}")
    assert server.process.returncode == 0


# ---- a cache directory that cannot be used -------------------------------------------------


@pytest.fixture(params=["a file in the way", "read-only"])
def unusable_cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(AIAAS_CACHE_DIR, why the warning says it cannot be used)."""
    if request.param == "a file in the way":
        path = tmp_path / "cache-file"
        path.write_text("not a directory")
        yield path, "it cannot be made (File exists)"
        return
    path = tmp_path / "read-only"
    path.mkdir()
    if os.geteuid() != 0:  # permissions hold for everyone but root
        path.chmod(0o555)
        yield path, "it is not writable"
        path.chmod(0o755)
        return
    # Root writes through permissions: a read-only file system, as a mount of one would be.
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m,ro", "tmpfs", str(path)])
    if mounted.returncode != 0:
        pytest.skip("root here may not mount a read-only tmpfs (no CAP_SYS_ADMIN)")
    try:
        yield path, "it is not writable"
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_an_unusable_cache_directory_serves_from_memory_and_says_so_once(
    tmp_path: Path, unusable_cache: tuple[Path, str]
) -> None:
    """A file in the way loaded every model into memory without a word (the log said only
    `loaded ... from <memory>`); a read-only directory with room made every model a 503."""
    cache, why = unusable_cache
    store, _ = publish_digits(tmp_path)
    second = onnx_factory.linear_classifier(tmp_path / "second.onnx", features=64, classes=10)
    Registry(LocalStore(store)).publish(onnx_factory.manifest_for(second, "second", "1"), second)
    server = ServeProcess(
        store, env={"AIAAS_CACHE_DIR": str(cache), "POWERTOOLS_LOG_LEVEL": "INFO"}
    )
    try:
        server.wait_ready()
        for model in (MODEL, "second"):
            assert _predict(server.base, model)[0] == 200
    finally:
        server.stop()
    lines = [orjson.loads(line) for line in server.log.read_text().splitlines() if line[:1] == "{"]
    warnings = [line for line in lines if line["level"] == "WARNING"]
    assert [(line["logger"], line["message"]) for line in warnings] == [
        (
            "aiaas.runtime",
            f"model files are held in memory, not cached in {cache}: {why}. Each process "
            "holds every model it loads in memory and downloads it again at every start: set "
            "AIAAS_CACHE_DIR to a writable directory with room for the models",
        )
    ], server.output()
    assert sum("from <memory>" in line["message"] for line in lines) == 2


# ---- a --store directory that is not there -------------------------------------------------


def test_a_mistyped_store_directory_is_named_in_the_banner_and_not_made(tmp_path: Path) -> None:
    """`--store ./stroe` served an empty registry; the banner said only "no models yet"."""
    store = tmp_path / "stroe"
    server = ServeProcess(store)
    try:
        server.wait_ready()
    finally:
        server.stop()
    assert server.log.read_text().splitlines()[1:3] == [
        f"  no models: the store directory {store} does not exist (mistyped --store or "
        "AIAAS_STORE?); the first `aiaas publish` to it makes it, and a model published there "
        "is picked up on first call",
        "aiaas serve: stopped",
    ]
    assert not store.exists()  # made on serving, it would hide the typo from the next command


def test_a_store_that_is_a_file_is_refused(tmp_path: Path) -> None:
    """It served an empty registry for good: nothing can be published into a file."""
    store = tmp_path / "models.onnx"
    store.write_bytes(b"onnx")
    done = run_serve(store, "--port", str(free_port()))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"aiaas serve: error: the store {store} is a file, not a directory: give --store (or "
        "AIAAS_STORE) the store's directory, or s3://bucket/prefix\n"
    )


def test_the_default_store_not_made_yet_is_no_models_yet(tmp_path: Path) -> None:
    """A first `aiaas serve` before any publish, in a fresh project: no typo to suspect."""
    env = {k: v for k, v in os.environ.items() if k != "AIAAS_STORE"}
    command = serve_command(Path(), "--port", str(free_port()))
    del command[command.index("--store") : command.index("--store") + 2]
    process = subprocess.Popen(
        command, cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(2)]
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert f"store {tmp_path / '.aiaas' / 'store'} " in banner[0]
    # What a base install (no torch) can run first, not only `aiaas train` (hunt_install 5).
    assert banner[1] == (
        "  no models yet: publish one (`aiaas publish model.onnx --name NAME`, or `aiaas train "
        "SPEC --publish`); it is picked up on first call\n"
    )
    assert not (tmp_path / ".aiaas").exists()
