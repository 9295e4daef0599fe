"""The CLI's first-contact probe of an S3 endpoint of the user's (functions/runtime/s3probe.py):
what it sends, and where it is sent at all (review_rev2 4, 5)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from infra.cli.main import main

HEADERS_PORT, SILENT_PORT = 30324, 30325


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
