"""`aiaas serve` as an operator runs it for good: flags, the port, stops and restarts.

Each test runs the real CLI in a subprocess on loopback and talks to it over real sockets.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.errors import AiaasError
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_events import MODEL, publish_digits
from tests.infra.test_serve import ROOT, TOKEN, ServeProcess, start_serve
from tests.reliability.s3proxy import DelayingProxy
from tests.s3server import MotoServer, free_port, wait_answering

ROW = [0.5] * 64


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("operator")
    publish_digits(root)
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServeProcess]:
    yield from start_serve(root / "store", "--token", TOKEN, headers=_auth())


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def serve_command(store: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "infra.cli.main", "--store", str(store), "serve", *args]


def run_serve(
    store: Path, *args: str, timeout: float = 20, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A serve command expected to exit by itself; one still serving after `timeout` is
    killed and fails the test."""
    process = subprocess.Popen(
        serve_command(store, *args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=None if env is None else {**os.environ, **env},
    )  # fmt: skip
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"`aiaas serve {' '.join(args)}` was still serving after {timeout} s: {out}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


# ---- the port: one server on it, and a restart gets it back ---------------------------------


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_second_serve_on_a_served_port_refuses_to_start(
    server: ServeProcess, root: Path, workers: str
) -> None:
    """granian binds with SO_REUSEPORT: a second server on the port (here one without a token)
    used to start and take about half the connections."""
    second = run_serve(root / "store", "--port", str(server.port), "--workers", workers)
    assert second.returncode == 1
    assert second.stderr.strip() == (
        f"aiaas serve: error: 127.0.0.1:{server.port} is already in use (another aiaas serve, "
        "or another server): stop it, or pick another --port"
    )
    statuses = {httpx.get(f"{server.base}/v2/health/live").status_code for _ in range(40)}
    assert statuses == {401}


def test_a_restart_gets_the_port_back_at_once_and_says_it_stopped(root: Path) -> None:
    """Stopped with a keep-alive connection open (the server closes it: TIME_WAIT on the
    server's side), started again on the same port straight away."""
    first = ServeProcess(root / "store")
    try:
        first.wait_ready()
        with httpx.Client(base_url=first.base) as client:
            assert client.get("/v2/health/live").status_code == 200
            first.process.send_signal(signal.SIGTERM)
            assert first.process.wait(timeout=10) == 0
        assert first.output().endswith("aiaas serve: stopped\n")
        again = ServeProcess(root / "store", "--port", str(first.port))
        again.port, again.base = first.port, first.base
        try:
            again.wait_ready(timeout=30)
        finally:
            again.stop()
    finally:
        first.stop()


# ---- flags: what granian would take badly is refused before anything loads -----------------


def test_host_localhost_is_served(root: Path) -> None:
    """granian binds only IP literals: `--host localhost` was a ValueError traceback."""
    server = ServeProcess(root / "store", "--host", "localhost")
    try:
        server.wait_ready()
        answer = httpx.post(f"{server.base}/models/{MODEL}/predict", json={"inputs": [ROW]})
        assert answer.status_code == 200
        assert answer.json()["model"] == MODEL
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--host", "192.0.2.1"],  # TEST-NET-1 (RFC 5737): no machine's own address
            "--host 192.0.2.1: this machine has no such address; use 127.0.0.1 (this machine "
            "only), 0.0.0.0 (every interface) or one of its own addresses",
        ),
        (["--port", "70000"], "argument --port: 70000 is not a TCP port: pick one from 1 to 65535"),
        (["--port", "0"], "argument --port: 0 is not a TCP port: pick one from 1 to 65535"),
    ],
)
def test_an_address_that_cannot_be_served_is_one_line(
    root: Path, args: list[str], message: str
) -> None:
    """These were a Rust panic of ~60 frames, an OverflowError traceback, and a server on a
    random port whose banner said :0."""
    done = run_serve(root / "store", *args)
    usage = args[0] == "--port"  # a value outside its flag's range: a usage error, exit 2
    assert done.returncode == (2 if usage else 1)
    assert done.stderr.splitlines()[-1] == f"aiaas serve: error: {message}"
    assert "Traceback" not in done.stdout


@pytest.mark.parametrize(
    ("flag", "value", "problem"),
    [
        ("--workers", "0", "0 is not a count: give 1 or more"),
        ("--max-in-flight", "0", "0 is not a count: give 1 or more"),
        ("--header-timeout", "0", "0 is not a timeout: give 0.001 to 86400 seconds"),
        ("--body-timeout", "0", "0 is not a timeout: give 0.001 to 86400 seconds"),
        ("--body-timeout", "-1", "-1 is not a timeout: give 0.001 to 86400 seconds"),
        ("--selector", "staging", "'staging' is neither @ALIAS (e.g. @production) nor :VERSION (e.g. :3)"),
    ],
)  # fmt: skip
def test_flag_values_that_served_wrongly_are_refused(
    root: Path, flag: str, value: str, problem: str
) -> None:
    """Each used to start: 0 workers served with one, 0 in flight and a header timeout of 0
    had no limit, a body timeout of 0 or less made every POST a 408, and a selector without
    its @ was glued to each model's name ('digits-mlpstaging': not found)."""
    done = run_serve(root / "store", flag, value)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == f"aiaas serve: error: argument {flag}: {problem}"


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("AIAAS_MODEL_LOAD", "ram", "AIAAS_MODEL_LOAD must be one of auto, disk, memory; got 'ram'"),
        ("AIAAS_ALIAS_TTL", "1m", "AIAAS_ALIAS_TTL must be a number, 0 or more; got '1m'"),
        ("AIAAS_MAX_PAYLOAD_BYTES", "6MB", "AIAAS_MAX_PAYLOAD_BYTES must be a whole number, more than 0; got '6MB'"),
        ("AIAAS_LOG_REQUESTS", "enabled", "AIAAS_LOG_REQUESTS must be true or false (1/0, yes/no, on/off); got 'enabled'"),
        ("AIAAS_DISABLE_METRICS", "2", "AIAAS_DISABLE_METRICS must be true or false (1/0, yes/no, on/off); got '2'"),
        ("AIAAS_SHADOW_CPUS", "cpu1", "AIAAS_SHADOW_CPUS must list CPUs as 3, 2-3 or 0,2; got 'cpu1'"),
        # read by the control plane with int(): it started, and every /control route was a 502
        ("AIAAS_CONTROL_MAX_UPLOAD_BYTES", "20MB", "AIAAS_CONTROL_MAX_UPLOAD_BYTES must be a whole number, more than 0; got '20MB'"),
    ],
)  # fmt: skip
def test_a_bad_setting_in_the_environment_is_refused_at_start(
    root: Path, name: str, value: str, problem: str
) -> None:
    """It used to start, print its banner, and answer every request with a 502 'the function
    failed to answer': only the log said which variable was wrong."""
    done = run_serve(root / "store", "--port", str(free_port()), env={name: value})
    assert (done.returncode, done.stderr) == (1, f"aiaas serve: error: {problem}\n")
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("AIAAS_MAX_PAYLOAD_BYTES", "a whole number"),
        ("AIAAS_EXPLAIN_MAX_SECONDS", "a number"),
        ("AIAAS_COMPARE_MAX_SECONDS", "a number"),
        ("AIAAS_CONTROL_MAX_UPLOAD_BYTES", "a whole number"),  # every upload was a 413
    ],
)
def test_a_limit_of_0_is_refused_at_start(name: str, kind: str) -> None:
    """0 was taken ("0 or more"), and then every predict was a 413 (a body over 0 bytes), every
    explain or compare a 422 ("the limit is 0 s"): no setting anyone wants."""
    from infra.cli.serve_start import check_function_settings

    with pytest.raises(AiaasError) as refused:
        check_function_settings({name: "0"})
    assert refused.value.message == f"{name} must be {kind}, more than 0; got '0'"


def test_a_bad_batch_setting_is_refused_at_start() -> None:
    """It was read by the control plane's first call on a directory store: serve started and
    every /control request was a 502 ("the function failed to answer")."""
    from infra.cli.serve_start import check_function_settings

    with pytest.raises(AiaasError) as refused:
        check_function_settings({"AIAAS_BATCH_CHUNK_ROWS": "abc"})
    assert (
        refused.value.message
        == "AIAAS_BATCH_CHUNK_ROWS must be a whole number, 1 or more; got 'abc'"
    )


def test_a_template_that_is_not_there_is_one_line(root: Path) -> None:
    """It was a FileNotFoundError traceback after the banner's store was opened."""
    done = run_serve(root / "store", "--template", str(root / "tempalte.yaml"))
    assert done.returncode == 1
    assert done.stderr == (
        f"aiaas serve: error: cannot read the template {root / 'tempalte.yaml'}: "
        "No such file or directory\n"
    )


# ---- stopping while the models load ------------------------------------------------------


def matmul_chain(path: Path, nodes: int = 2000, width: int = 8) -> Path:
    """A 600 KB model onnxruntime takes ~0.3 s to load (graph optimisation, GIL released)."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.random((width, width), dtype=np.float32), f"W{i}")
        for i in range(nodes)
    ]
    names = ["x"] + [f"h{i}" for i in range(nodes - 1)] + ["y"]
    graph = helper.make_graph(
        [helper.make_node("MatMul", [names[i], f"W{i}"], [names[i + 1]]) for i in range(nodes)],
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", width])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", onnx_factory.OPSET)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_a_signal_during_the_warm_up_exits_cleanly(tmp_path: Path) -> None:
    """With one worker the server is this process: exiting while the warm-up thread was inside
    onnxruntime's session creation aborted it (exit status -6, 'terminate called without an
    active exception'; 2 of 6 stops, by SIGTERM or SIGINT, ~0.1-0.5 s after the start), and
    finalizing the interpreter as native threads wound down crashed 1 stop in a few hundred
    (SIGSEGV, once in CI): the process now ends without it (infra/local/ending.py)."""
    store = tmp_path / "store"
    path = matmul_chain(tmp_path / "chain.onnx")
    registry = Registry(LocalStore(store))
    for i in range(4):
        registry.publish(onnx_factory.manifest_for(path, f"chain{i}", "1"), path)
    exits = []
    for attempt in range(6):
        server = ServeProcess(store)
        try:
            _wait_listening(server)
            time.sleep(0.08 * attempt)
            server.process.send_signal(signal.SIGTERM if attempt % 2 else signal.SIGINT)
            code = server.process.wait(timeout=40)
        finally:
            server.stop()
        exits.append((code, server.output().count("loaded ")))
        # The log has faulthandler's stacks of a crash: the report of a failure.
        assert code == 0 and "terminate called" not in server.output(), (exits, server.output())


def _wait_listening(server: ServeProcess, timeout: float = 30) -> None:
    """Until the port accepts: the warm-up has only begun."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"aiaas serve did not listen within {timeout} s: {server.output()}")


# ---- the store away for a while, and back ------------------------------------------------


def publish_linear(store: S3Store, workdir: Path, name: str) -> None:
    path = onnx_factory.linear_classifier(workdir / f"{name}.onnx", features=64, classes=10)
    Registry(store).publish(onnx_factory.manifest_for(path, name, "1"), path)


def test_s3_down_a_new_model_is_a_steady_503_and_found_once_s3_is_back(
    s3_store: S3Store, moto_server: MotoServer, tmp_path: Path
) -> None:
    """Asking for a model not loaded yet makes the gateway list the store: with S3 down that
    was a 500 with an empty body and a traceback in the log, on every such request."""
    publish_linear(s3_store, tmp_path, MODEL)
    proxy = DelayingProxy(moto_server.port).start()
    port = free_port()
    log = tmp_path / "serve.log"
    command = serve_command(Path(), "--port", str(port))
    command[command.index("--store") + 1] = f"s3://{s3_store.bucket}/registry"
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.endpoint, "AIAAS_CACHE_DIR": str(tmp_path)}
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process, log)
        assert _predict(base, MODEL)[0] == 200
        proxy.stop()
        assert _predict(base, MODEL)[0] == 200  # the loaded model serves on
        refused = (503, {"error": "cannot look up new models: the model store is not reachable"})
        assert [_predict(base, "late") for _ in range(3)] == [refused] * 3
        proxy.start()
        publish_linear(s3_store, tmp_path, "late")
        time.sleep(2.1)  # the gateway lists the store at most every 2 s
        status, body = _predict(base, "late")
        assert (status, body["model"]) == (200, "late")
    finally:
        process.terminate()
        process.wait(timeout=20)
        proxy.stop()
    output = log.read_text()
    assert "Traceback" not in output
    assert output.count("cannot look for models published since the start: S3 error") == 1


def _predict(base: str, model: str) -> tuple[int, Any]:
    answer = httpx.post(f"{base}/models/{model}/predict", json={"inputs": [ROW]}, timeout=30)
    return answer.status_code, answer.json() if answer.content else None


def _wait_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    port = int(base.rsplit(":", 1)[1])
    wait_answering(process, port, f"{base}/v2/health/ready", log=log)
