"""The CLI's first-contact probe of an S3 endpoint of the user's (functions/runtime/s3probe.py):
what it sends, and where it is sent at all (review_rev2 4, 5)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from infra.cli.main import main
from tests.infra.test_cli_store_endpoints import silent_listener
from tests.s3server import free_port

HEADERS_PORT, SILENT_PORT = free_port(), free_port()


class _Seen(http.server.BaseHTTPRequestHandler):
    """Records each request's method, path and Host header; answers 404 (no such bucket)."""

    seen: list[tuple[str, str, str]] = []

    def _answer(self) -> None:
        type(self).seen.append((self.command, self.path, self.headers.get("Host", "")))
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = _answer  # noqa: N815 (http.server's names)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recording() -> Iterator[type[_Seen]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", HEADERS_PORT), _Seen)
    _Seen.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield _Seen
    server.shutdown()
    server.server_close()


def test_the_probe_sends_no_user_info_of_the_endpoint(
    recording: type[_Seen], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An endpoint written with user info (`http://KEY:SECRET@host:port`): botocore's requests
    carry `host:port` only, and the probe sent `KEY:SECRET@host:port` as its Host, in the clear."""
    endpoint = f"http://key:secret@127.0.0.1:{HEADERS_PORT}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    main(["--store", "s3://bucket/registry", "models"])
    assert ("HEAD", "/", f"127.0.0.1:{HEADERS_PORT}") in recording.seen, recording.seen
    assert not [seen for seen in recording.seen if "secret" in seen[2]], recording.seen


@pytest.fixture
def silent(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A loopback port that takes connections and never answers."""
    with silent_listener(SILENT_PORT) as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        monkeypatch.setenv("AIAAS_S3_READ_TIMEOUT", "8")
        monkeypatch.setenv("AIAAS_S3_CONNECT_TIMEOUT", "1")
        for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            monkeypatch.delenv(name, raising=False)
        yield endpoint


@pytest.mark.parametrize(
    "setting",
    [
        {"NO_PROXY": "internal.example.com"},  # a proxy for none: its exceptions only
        {"HTTPS_PROXY": "http://127.0.0.1:9"},  # a proxy for https only: this one is http
    ],
)
def test_the_probe_runs_unless_a_proxy_carries_the_endpoints_requests(
    silent: str,
    setting: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """NO_PROXY alone (set machine-wide where a proxy is set for some hosts and not here, and
    by many clusters) turned the probe off: a command waited the read timeout again."""
    for name, value in setting.items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    assert main(["--store", "s3://bucket/registry", "models"]) == 1
    took = time.monotonic() - started
    assert took < 5, took  # the 1 s probe, not the 8 s read timeout
    assert "sent no answer within 1 s" in capsys.readouterr().err
