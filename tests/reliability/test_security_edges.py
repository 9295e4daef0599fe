"""Security at the edges the first pass missed: who `aiaas serve` admits (two Authorization
headers, a token in the query string, an address other machines reach with no token), bodies
nested past any parser's depth, and .npy files whose objects would run code if unpickled.

Every request here goes over a raw socket, byte for byte, so no client normalises it first.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import socket
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from functions.batch.handler import dispatch
from functions.runtime.s3store import S3Store
from infra.cli.main import main as aiaas
from tests.batch_support import publish_classifier, service, sqs_for
from tests.functions.test_predict_events import MODEL, publish_digits
from tests.infra.test_serve import ROOT, ServeProcess, start_serve
from tests.infra.test_serve_operator import serve_command
from tests.s3server import free_port

TOKEN = "tok-edge-3Vn8-never-in-logs"
BEARER = f"Bearer {TOKEN}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    store, _ = publish_digits(tmp_path_factory.mktemp("edges"))
    env = {"AIAAS_API_TOKEN": TOKEN, "POWERTOOLS_LOG_LEVEL": "DEBUG", "PYTHONUNBUFFERED": "1"}
    yield from start_serve(store, env=env, headers={"Authorization": BEARER})


def exchange(
    server: ServeProcess,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
) -> tuple[int, bytes]:
    """One request as written (repeated headers kept, the target untouched): status and body."""
    head = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    head += ["Connection: close", *(f"{name}: {value}" for name, value in headers)]
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
        conn.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + body)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


REFUSED = (401, b'{"error":"missing or invalid bearer token"}')


@pytest.mark.parametrize(
    "values",
    [[BEARER, "Bearer wrong"], ["Bearer wrong", BEARER], [BEARER, BEARER]],
    ids=["right-first", "right-last", "right-twice"],
)
def test_two_authorization_headers_are_refused(served: ServeProcess, values: list[str]) -> None:
    """The first used to decide alone: `right-first` was a 200, so a proxy judging by the last
    header and this gateway disagreed on who was calling. API Gateway joins repeated headers
    with a comma, which no token matches: refused there too."""
    headers = [("Authorization", value) for value in values]
    assert exchange(served, "GET", f"/v2/models/{MODEL}", headers) == REFUSED
    assert exchange(served, "GET", f"/v2/models/{MODEL}", headers[:1])[0] in (200, 401)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", f"/v2/models/{MODEL}"), ("GET", "/metrics"), ("GET", "/control/models"),
     ("POST", f"/models/{MODEL}/predict"), ("GET", "/v2/health/live")],
)  # fmt: skip
def test_a_token_in_the_query_string_is_refused_and_never_logged(
    served: ServeProcess, method: str, path: str
) -> None:
    query = f"?token={TOKEN}&access_token={TOKEN}"
    assert exchange(served, method, path + query, []) == REFUSED
    status, body = exchange(served, method, path + query, [("Authorization", BEARER)])
    assert TOKEN.encode() not in body, (status, body)  # the error names no query value
    log = served.log.read_text(errors="replace")
    assert TOKEN not in log, log[-3000:]


DEEP = 100_000


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", f"/models/{MODEL}/predict", b'{"inputs":' + b"[" * DEEP + b"]" * DEEP + b"}"),
        ("POST", f"/v2/models/{MODEL}/infer", b'{"a":' * DEEP + b"1" + b"}" * DEEP),
        ("POST", f"/models/{MODEL}/explain", b"[" * DEEP + b"]" * DEEP),
        ("PUT", f"/control/models/{MODEL}/aliases/staging", b'{"a":' * DEEP + b"1" + b"}" * DEEP),
        ("POST", f"/control/batch/{MODEL}/jobs", b"[" * DEEP + b"]" * DEEP),
        ("POST", f"/control/models/{MODEL}/compare", b'{"a":' * DEEP + b"1" + b"}" * DEEP),
    ],
    ids=["predict", "infer", "explain", "alias", "batch-job", "compare"],
)
def test_json_nested_past_any_parser_depth_is_a_400(
    served: ServeProcess, method: str, path: str, body: bytes
) -> None:
    """Python's json raises RecursionError at ~1000 levels: a 500 if let through."""
    headers = [("Authorization", BEARER), ("Content-Type", "application/json")]
    status, answer = exchange(served, method, path, headers, body)
    assert status == 400, answer
    assert json.loads(answer)["error"], answer
    assert exchange(served, "GET", "/v2/health/live", headers[:1]) == (200, b'{"live":true}')


# ---- who may reach an open server ------------------------------------------------------------


def serve_until_exit(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AIAAS_API_TOKEN"}
    command = serve_command(store, "--port", str(free_port()), *args)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_an_address_other_machines_reach_needs_a_token(tmp_path: Path) -> None:
    """`--host 0.0.0.0` with no token served the control plane to the network: anyone could
    move `production` to another version or submit batch jobs over store keys."""
    store, _ = publish_digits(tmp_path)
    done = serve_until_exit(store, "--host", "0.0.0.0")
    assert (done.returncode, done.stderr) == (
        1,
        "aiaas serve: error: --host 0.0.0.0 serves other machines, and with no token anyone "
        "who reaches it may move aliases, submit batch jobs and read every model: set "
        "AIAAS_API_TOKEN to the token callers send (or AIAAS_API_TOKEN_FILE to a file of "
        "them), or pass --no-auth to serve it open on purpose\n",
    )
    assert "http://" not in done.stdout  # nothing was served


def test_no_auth_serves_every_interface_open_on_purpose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = publish_digits(tmp_path)
    monkeypatch.delenv("AIAAS_API_TOKEN", raising=False)  # the server gets this environment
    for server in start_serve(store, "--host", "0.0.0.0", "--no-auth"):
        answer = httpx.get(f"{server.base}/v2/models/{MODEL}", timeout=30)
        assert (answer.status_code, answer.json()["name"]) == (200, MODEL)


@pytest.mark.parametrize("proxy", [(), ("--trusted-proxy", "127.0.0.1")])
def test_a_token_over_plain_http_to_other_machines_is_said_at_the_start(
    tmp_path: Path, proxy: tuple[str, ...]
) -> None:
    """serve speaks no TLS: on an address other machines reach with no proxy named, every
    bearer token crosses the network readable, and the start said nothing (hunt_security2).
    Behind a named proxy (which puts TLS in front, docs/serve.md) it is not said."""
    store, _ = publish_digits(tmp_path)
    env = {**os.environ, "AIAAS_API_TOKEN": "t0ken"}
    auth = {"Authorization": "Bearer t0ken"}
    for server in start_serve(store, "--host", "0.0.0.0", *proxy, env=env, headers=auth):
        said = "plain HTTP: the bearer token and every request cross the network unencrypted"
        assert (said in server.output()) is not bool(proxy), server.output()
        assert httpx.get(f"{server.base}/v2/models/{MODEL}", headers=auth).status_code == 200


# ---- no pickle: objects in a .npy are refused, never unpickled ---------------------------------


class Touch:
    """Unpickled, it creates `path`: proof that something called pickle.load on it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return pathlib.Path.touch, (pathlib.Path(self.path),)


def object_npy(marker: Path) -> bytes:
    """A [1, 4] object array whose cells touch `marker` when unpickled; checked to do so."""
    buffer = io.BytesIO()
    np.save(buffer, np.array([[Touch(marker)] * 4], dtype=object), allow_pickle=True)
    np.load(io.BytesIO(buffer.getvalue()), allow_pickle=True)  # the payload works ...
    assert marker.exists(), "the payload did not run when unpickled"
    marker.unlink()  # ... so its marker's absence below means no unpickling
    return buffer.getvalue()


def test_a_batch_npy_of_objects_is_refused_without_unpickling(
    s3_store: S3Store, tmp_path: Path
) -> None:
    publish_classifier(s3_store, tmp_path)
    marker = tmp_path / "unpickled"
    key = "batch/iris/input/evil.npy"
    s3_store.put_bytes(key, object_npy(marker))
    assert dispatch(service(s3_store, tmp_path), sqs_for(s3_store, key)) == {
        "batchItemFailures": []
    }
    summary = json.loads(s3_store.get_bytes("batch/iris/output/evil.npy.summary.json"))
    assert (summary["status"], summary["error"]) == (
        "failed",
        f"{key}: holds Python objects, which need pickle; save numbers",
    )
    assert not marker.exists()


def test_the_cli_refuses_an_npy_of_objects_without_unpickling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = publish_digits(tmp_path)
    marker = tmp_path / "unpickled"
    data = tmp_path / "rows.npy"
    data.write_bytes(object_npy(marker))
    # The data a background is built from, then (the model has one: explain reads its file)
    # the rows to explain.
    assert aiaas(["--store", str(store), "baseline", MODEL, str(data)]) == 1
    assert "pickle" in capsys.readouterr().err
    good = tmp_path / "good.npy"
    np.save(good, np.random.default_rng(0).random((40, 64), dtype=np.float32))
    assert aiaas(["--store", str(store), "baseline", MODEL, str(good)]) == 0
    capsys.readouterr()
    code = aiaas(["--store", str(store), "explain", MODEL, "--file", str(data)])
    assert code == 1
    assert "pickle" in capsys.readouterr().err
    assert not marker.exists()


def test_a_training_npz_of_objects_is_refused_without_unpickling(tmp_path: Path) -> None:
    from training.datasets import load_raw
    from training.errors import DataError
    from training.spec import DatasetSpec

    marker = tmp_path / "unpickled"
    cells = object_npy(marker)  # an .npy member: np.savez would pickle through np.save too
    data = tmp_path / "train.npz"
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("x.npy", cells)
        archive.writestr("y.npy", cells)
    with pytest.raises(DataError) as refused:
        load_raw(DatasetSpec(path=str(data)), "tabular")
    assert refused.value.message == (
        "train.npz: Object arrays cannot be loaded when allow_pickle=False; save numeric "
        "arrays (np.savez)"
    )
    assert not marker.exists()
