"""S3 bodies that break mid-read surface as StoreError (retryable), whole or ranged.

The server is a real HTTP server on loopback that announces 1000 bytes and sends a few before
closing the connection, as a reset connection or a dying S3 front end would.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config

from functions.runtime.batch.source import ByteRange, line_batches, open_range
from functions.runtime.errors import StoreError
from functions.runtime.s3store import S3Store

KEY = "batch/iris/input/a.csv"
SENT = b"x_0,x_1\n1,2\n3,4\n"


class CutShort(BaseHTTPRequestHandler):
    """Every GET: headers for 1000 bytes, then SENT, then the connection closes."""

    def do_GET(self) -> None:
        ranged = "Range" in self.headers
        self.send_response(HTTPStatus.PARTIAL_CONTENT if ranged else HTTPStatus.OK)
        self.send_header("Content-Length", "1000")
        if ranged:
            self.send_header("Content-Range", "bytes 3-1002/1003")
        self.send_header("ETag", '"e1"')
        self.end_headers()
        self.wfile.write(SENT)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def served_store(handler: type[BaseHTTPRequestHandler], **config: Any) -> Iterator[S3Store]:
    """An S3Store whose every request `handler` answers, on loopback, without retries."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}, **config),
    )
    try:
        yield S3Store("bucket", "registry", client=client)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def cut_short_store() -> Iterator[S3Store]:
    with served_store(CutShort) as store:
        yield store


def _assert_store_error(exc: pytest.ExceptionInfo[StoreError]) -> None:
    assert exc.value.status == HTTPStatus.SERVICE_UNAVAILABLE
    assert exc.value.message.startswith(f"S3 error reading s3://bucket/registry/{KEY}: ")


def test_whole_object_read_cut_short_is_a_store_error(cut_short_store):
    with pytest.raises(StoreError) as exc, cut_short_store.open_read(KEY) as body:
        body.read()
    _assert_store_error(exc)


def test_ranged_read_cut_short_is_a_store_error(cut_short_store):
    with pytest.raises(StoreError) as exc, open_range(cut_short_store, KEY, 3) as body:
        body.read()
    _assert_store_error(exc)


@pytest.mark.parametrize("start", [0, 3])
def test_batch_line_reader_sees_a_store_error(cut_short_store, start):
    with pytest.raises(StoreError) as exc, open_range(cut_short_store, KEY, start) as stream:
        list(line_batches(stream, ByteRange(start + 1 if start else 0, None), 2))
    _assert_store_error(exc)


class Stalls(BaseHTTPRequestHandler):
    """Every GET: headers for 1000 bytes, then SENT, then nothing until the test ends."""

    release = threading.Event()

    def do_GET(self) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Length", "1000")
        self.send_header("ETag", '"e1"')
        self.end_headers()
        self.wfile.write(SENT)
        self.wfile.flush()
        self.release.wait(10)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_read_that_stalls_says_for_how_long_and_which_setting() -> None:
    """A stream that went silent mid-read (S3 paused: moto stopped) said `Read timeout on
    endpoint URL: "None"`: botocore's streaming body knows no URL."""
    with served_store(Stalls, read_timeout=0.2) as store:
        try:
            with pytest.raises(StoreError) as exc, store.open_read(KEY) as body:
                body.read()
        finally:
            Stalls.release.set()  # the handler's thread ends, so the server can shut down
    _assert_store_error(exc)
    assert exc.value.message.endswith(
        ": no data came for 0.2 s mid-read (AIAAS_S3_READ_TIMEOUT): S3 or the network stalled"
    )
