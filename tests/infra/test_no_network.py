"""aiaas on a machine with no route to the internet (docs/install.md "With no internet"): `publish` with
its card's plots, `serve`, predict, the control plane and `/docs` reach no address but loopback.

Every Python process aiaas starts here loads a `sitecustomize` that refuses, and writes down,
any socket connection or name lookup that is not loopback: a library that phones home (a
telemetry client, a font or model download) shows in that file. Native code's own sockets
(onnxruntime, granian) are not seen here; `strace -e connect` over the same commands, done by
hand, saw only loopback (docs/install.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests import onnx_factory
from tests.infra.test_serve import ROOT, ServeProcess, start_serve

GUARD = """
import os, socket
_LOG = os.environ["AIAAS_TEST_NETWORK_LOG"]
_LOCAL = ("127.", "::1", "localhost", "0.0.0.0", "::")

def _refused(what):
    with open(_LOG, "a") as log:
        log.write(f"{os.getpid()} {what}\\n")
    raise OSError(f"no network in this test: {what}")

def _is_local(host):
    return host is None or str(host).startswith(_LOCAL) or host == ""

_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        _refused(f"connect {address!r}")
    return _connect(self, address)

def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        _refused(f"connect_ex {address!r}")
    return _connect_ex(self, address)

def getaddrinfo(host, *args, **kwargs):
    if not _is_local(host if not isinstance(host, bytes) else host.decode()):
        _refused(f"getaddrinfo {host!r}")
    return _getaddrinfo(host, *args, **kwargs)

socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
"""


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a process with no network: the guard, its log, a home of its own."""
    root = tmp_path_factory.mktemp("offline")
    (root / "guard").mkdir()
    (root / "guard" / "sitecustomize.py").write_text(GUARD)
    (root / "home").mkdir()
    return {
        **os.environ,
        "PYTHONPATH": str(root / "guard"),
        "AIAAS_TEST_NETWORK_LOG": str(root / "network.log"),
        "HOME": str(root / "home"),
        "MPLCONFIGDIR": str(root / "home" / "mpl"),  # no font cache to reuse: matplotlib builds it
    }


def reached(env: dict[str, str]) -> str:
    log = Path(env["AIAAS_TEST_NETWORK_LOG"])
    return log.read_text() if log.exists() else ""


@pytest.fixture(scope="module")
def server(
    offline: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("offline-store")
    model = onnx_factory.linear_classifier(root / "m.onnx", features=4, classes=3)
    rows = np.random.default_rng(0).normal(size=(60, 4))
    data = root / "rows.csv"
    data.write_text(
        "a,b,c,d,label\n"
        + "".join(
            f"{','.join(f'{v:.3f}' for v in row)},{'xyz'[i % 3]}\n" for i, row in enumerate(rows)
        )
    )
    publish = subprocess.run(
        [sys.executable, "-m", "infra.cli.main", "--store", str(root / "store"), "publish",
         str(model), "--name", "offline", "--features", "a,b,c,d", "--labels", "x,y,z",
         "--alias", "production", "--data", str(data), "--target", "label", "--no-progress"],
        cwd=ROOT, env=offline, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert publish.returncode == 0, publish.stderr
    assert "card" in publish.stdout + publish.stderr
    yield from start_serve(root / "store", env=offline)


def test_the_guard_sees_a_connection_out(offline: dict[str, str]) -> None:
    """The guard itself: without it, this test would pass whatever aiaas did."""
    attempt = subprocess.run(
        [sys.executable, "-c", "import socket; socket.create_connection(('192.0.2.1', 80), 1)"],
        env={**offline, "AIAAS_TEST_NETWORK_LOG": offline["AIAAS_TEST_NETWORK_LOG"] + ".self"},
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert attempt.returncode != 0 and "no network in this test" in attempt.stderr
    assert "192.0.2.1" in Path(offline["AIAAS_TEST_NETWORK_LOG"] + ".self").read_text()


def test_publish_serve_predict_and_docs_reach_nothing_but_loopback(
    server: ServeProcess, offline: dict[str, str]
) -> None:
    predict = httpx.post(
        f"{server.base}/models/offline/predict",
        json={"instances": [{"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4}]},
    )
    assert predict.status_code == 200 and predict.json()["predictions"][0]["label"] in "xyz"
    card = httpx.get(f"{server.base}/control/models/offline/versions/1/card")
    assert card.status_code == 200
    for path in ("/docs", "/openapi.json", "/control/models", "/metrics", "/v2/health/ready"):
        assert httpx.get(server.base + path).status_code == 200, path
    assert reached(offline) == ""
