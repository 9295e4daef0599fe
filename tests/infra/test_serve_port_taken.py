"""The tests' servers (`start_serve`, `MotoServer`) on a port another process took between
`free_port()` and the server's bind: never the other process's answers taken for the server's
(an HTTP server there answers every readiness check), and the server started again on a free
port."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import s3server
from tests.infra import test_serve
from tests.infra.test_serve import start_serve
from tests.s3server import MotoServer, free_port


class _Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def squatter() -> Iterator[int]:
    """A port with an HTTP server on it that answers 200 to everything."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_taken_port_is_not_mistaken_for_the_server_and_another_is_used(
    tmp_path: Path, squatter: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "store").mkdir()
    ports = iter([squatter])
    monkeypatch.setattr(test_serve, "free_port", lambda: next(ports, None) or free_port())
    for server in start_serve(tmp_path / "store"):
        assert server.port != squatter
        assert server.process.poll() is None
        live = httpx.get(f"{server.base}/v2/health/live", timeout=10)
        assert (live.status_code, live.json()) == (200, {"live": True})


def test_moto_is_started_again_elsewhere_when_its_port_is_taken(
    tmp_path: Path, squatter: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = iter([squatter])
    monkeypatch.setattr(s3server, "free_port", lambda: next(ports, None) or free_port())
    moto = MotoServer().start(tmp_path / "moto.log")
    try:
        assert moto.port != squatter and moto.endpoint.endswith(f":{moto.port}")
        assert httpx.get(f"{moto.endpoint}/moto-api/", timeout=10).status_code == 200
    finally:
        moto.stop()
