"""What `aiaas` says when AWS_ENDPOINT_URL_S3 names something that is not S3 (a web page, a proxy's
403 page) or an endpoint that takes the connection and never answers (hunt_s3ux 1, 2)."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from functions.runtime.errors import StoreError, StoreUnreachable
from functions.runtime.s3client import make_s3_client
from functions.runtime.s3store import S3Store
from infra.cli.main import main
from tests.reliability.s3proxy import DelayingProxy
from tests.s3server import MotoServer, free_port

PAGE = b"<!DOCTYPE html><html><head><title>It works</title></head><body>It works</body></html>"


class _Page(http.server.BaseHTTPRequestHandler):
    """A web server, not S3: every request answered with an HTML page."""

    status = 200

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(PAGE)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _answer  # noqa: N815 (http.server's names)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Forbidden(_Page):
    status = 403  # a proxy's or captive portal's page


class _Unavailable(_Page):
    status = 503  # a load balancer's passing error page, in front of a real S3
    seen = 0

    def _answer(self) -> None:
        if (self.command, self.path) != ("HEAD", "/"):  # the CLI's probe (s3probe.py): not S3's
            type(self).seen += 1
        super()._answer()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _answer  # noqa: N815


class _S3Error(http.server.BaseHTTPRequestHandler):
    """An S3 server answering every request with one error document, `BODY`, a 400."""

    BODY = b""

    def _answer(self) -> None:
        self.send_response(400)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(self.BODY)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(self.BODY)

    do_GET = do_HEAD = _answer  # noqa: N815 (http.server's names)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _OtherRegion(_S3Error):
    """An S3 server (MinIO's answer) whose region is not the one the client signs for."""

    BODY = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AuthorizationHeaderMalformed'
        b"</Code><Message>The authorization header is malformed; the region is wrong; "
        b"expecting 'eu-central-1'.</Message><BucketName>bucket</BucketName>"
        b"<Region>eu-central-1</Region><RequestId>1</RequestId></Error>"
    )


class _MalformedCredential(_S3Error):
    """AWS's answer to an access key it cannot parse: one holding a '/', as a secret key does
    (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY swapped). No region is wrong here."""

    BODY = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AuthorizationHeaderMalformed'
        b"</Code><Message>The authorization header is malformed; the Credential is "
        b"mal-formed; expecting &quot;&lt;YOUR-AKID&gt;/YYYYMMDD/REGION/SERVICE/aws4_request"
        b"&quot;.</Message><RequestId>1</RequestId></Error>"
    )


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    # A client that hangs up before the body is written (the CLI's HEAD / probe reads the
    # status alone) is no test failure: socketserver printed its traceback on the stderr the
    # tests read (a CI run).
    server.handle_error = lambda request, address: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(params=[_Page, _Forbidden], ids=["200-page", "403-page"])
def web_page(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for endpoint in _serve(request.param):
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield endpoint


@pytest.fixture
def black_hole(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A port that takes connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AIAAS_S3_READ_TIMEOUT", "1")
    yield endpoint
    listener.close()


@pytest.mark.parametrize(
    "command",
    [
        ["models"],  # was "no models in s3://...", exit 0
        ["versions", "iris"],  # was "model 'iris' not found"
        ["show", "iris:1"],  # was a traceback: KeyError: 'ETag'
        ["promote", "iris", "1"],  # the same
    ],
)
def test_an_endpoint_that_is_a_web_page_is_said_in_one_line(
    web_page: str, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--store", "s3://bucket/registry", *command]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"aiaas {command[0]}: error: S3 error on s3://bucket/registry/")
    assert f"{web_page} is not an S3 endpoint: it answered " in err
    assert "with an HTML page (HTTP " in err
    assert "check AWS_ENDPOINT_URL_S3" in err


def test_a_read_from_a_web_page_is_a_store_error_not_a_key_error(web_page: str) -> None:
    # The predict function's init read the capture setting so: KeyError, an init crash.
    with pytest.raises(StoreError, match="is not an S3 endpoint"):
        S3Store("bucket", "registry", client=make_s3_client()).get_bytes("models/m/capture.json")


def test_an_endpoint_that_never_answers_is_given_up_after_one_timeout(
    black_hole: str, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    assert main(["--store", "s3://bucket/registry", "models"]) == 1
    took = time.monotonic() - started
    assert took < 3.5, took  # was 5 tries of 1 s each, and the backoff between them
    err = capsys.readouterr().err
    assert err == (
        f"aiaas models: error: S3 error on s3://bucket/registry/models: {black_hole} accepted "
        "the connection but sent no answer within 1 s (not tried again: it has not answered "
        "once); check AWS_ENDPOINT_URL_S3 (an S3 API endpoint, e.g. MinIO's http://HOST:9000); "
        "AIAAS_S3_READ_TIMEOUT sets the wait\n"
    )


def test_a_timeout_once_the_endpoint_has_answered_is_tried_again(
    moto_server: MotoServer, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = DelayingProxy(moto_server.port).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        monkeypatch.setenv("AIAAS_S3_READ_TIMEOUT", "0.5")
        monkeypatch.setenv("AIAAS_S3_MAX_ATTEMPTS", "3")
        store = S3Store(s3_bucket, "registry", client=make_s3_client())
        assert store.list_dirs("models") == []  # it answered
        proxy.delay = 30.0  # S3 slow for a moment: retried, as botocore does
        sent = proxy.upstream_bytes
        started = time.monotonic()
        with pytest.raises(StoreUnreachable, match="Read timeout"):
            store.list_dirs("models")
        assert time.monotonic() - started >= 1.5  # 3 tries of 0.5 s
        assert proxy.upstream_bytes >= sent * 3
    finally:
        proxy.stop()


def test_a_bucket_of_another_region_names_the_region_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # It was botocore's "An error occurred (AuthorizationHeaderMalformed) when calling ...".
    for endpoint in _serve(_OtherRegion):
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        assert main(["--store", "s3://bucket/registry", "models"]) == 1
    assert capsys.readouterr().err == (
        "aiaas models: error: S3 bucket 'bucket' is in another region "
        "(AuthorizationHeaderMalformed): set AWS_REGION=eu-central-1 (or the profile's region)\n"
    )


def test_a_credential_s3_cannot_read_is_not_said_to_be_another_region(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """AuthorizationHeaderMalformed is also AWS's answer to an access key it cannot parse (the
    two keys swapped: a secret key holds '/'): it was said as "in another region: set
    AWS_REGION (or the profile's region) to the bucket's", a fix that fixes nothing
    (review_revfn 5)."""
    for endpoint in _serve(_MalformedCredential):
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE")
        assert main(["--store", "s3://bucket/registry", "models"]) == 1
    err = capsys.readouterr().err
    assert "another region" not in err and "AWS_REGION" not in err, err
    assert err.startswith(
        "aiaas models: error: S3 refused the credentials used for s3://bucket/registry "
        "(AuthorizationHeaderMalformed): "
    ), err
    assert "AWS_ACCESS_KEY_ID" in err and "the Credential is mal-formed" in err, err


def test_a_passing_error_page_is_tried_again_as_s3_s_own_503(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A proxy's 502/503 HTML page is an S3 behind it unavailable for a moment: botocore's
    retries judge it, as S3's SlowDown. It was refused at once as "not an S3 endpoint"."""
    for endpoint in _serve(_Unavailable):
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        for name, value in (("AWS_ACCESS_KEY_ID", "t"), ("AWS_SECRET_ACCESS_KEY", "t")):
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AIAAS_S3_MAX_ATTEMPTS", "3")
        assert main(["--store", "s3://bucket/registry", "models"]) == 1
    assert _Unavailable.seen == 3, _Unavailable.seen  # was 1
    assert "is not an S3 endpoint" not in capsys.readouterr().err


@contextlib.contextmanager
def silent_listener(port: int) -> Iterator[str]:
    """A loopback `port` that takes connections and never answers: its endpoint URL."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        listener.close()


@pytest.fixture
def silent_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A silent endpoint under the default read timeout (30 s) and a connect timeout of 1 s."""
    with silent_listener(SILENT_PORT) as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        monkeypatch.setenv("AIAAS_S3_READ_TIMEOUT", "30")
        monkeypatch.setenv("AIAAS_S3_CONNECT_TIMEOUT", "1")
        yield endpoint


SILENT_PORT = free_port()


def test_the_cli_says_an_endpoint_that_never_answers_within_the_connect_timeout(
    silent_port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each command waited one whole read timeout (30 s by default) before its error line."""
    started = time.monotonic()
    assert main(["--store", "s3://bucket/registry", "models"]) == 1
    took = time.monotonic() - started
    assert took < 4, took  # the 1 s probe, not 30 s
    assert capsys.readouterr().err == (
        f"aiaas models: error: S3 error on s3://bucket/registry/models: {silent_port} accepted "
        "the connection but sent no answer within 1 s (not tried again: it has not answered "
        "once); check AWS_ENDPOINT_URL_S3 (an S3 API endpoint, e.g. MinIO's http://HOST:9000); "
        "AIAAS_S3_CONNECT_TIMEOUT sets the wait\n"
    )


def test_a_functions_client_does_not_probe_the_endpoint(
    silent_port: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The functions (Lambda, `aiaas serve`'s workers) send no probe: one more connection on
    every cold start. Theirs is botocore's own first-contact rule: one read timeout."""
    monkeypatch.setenv("AIAAS_S3_READ_TIMEOUT", "1.5")
    started = time.monotonic()
    with pytest.raises(StoreUnreachable, match=r"sent no answer within 1\.5 s") as raised:
        S3Store("bucket", "registry", client=make_s3_client()).list_dirs("models")
    assert time.monotonic() - started >= 1.5
    assert "AIAAS_S3_READ_TIMEOUT sets the wait" in raised.value.message


def test_the_cli_probe_lets_an_answering_endpoint_through(
    moto_server: MotoServer, s3_bucket: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_server.endpoint)
    assert main(["--store", f"s3://{s3_bucket}/registry", "models"]) == 0
    assert "no models in" in capsys.readouterr().err
