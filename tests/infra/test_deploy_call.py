"""`python -m infra.call` signs requests as API Gateway checks them: a real HTTP request to a
server on loopback, whose signature is recomputed here from the SigV4 specification (hashlib and
hmac, not botocore), and a JWT sent as a bearer token."""

from __future__ import annotations

import hashlib
import hmac
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from infra.call import main, region_of

SECRET = "testing"  # tests/conftest.py's AWS_SECRET_ACCESS_KEY


class Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def _record(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        Recorder.seen.append(
            {"method": self.command, "path": self.path, "headers": self.headers, "body": body}
        )
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    do_GET = do_POST = _record  # noqa: N815 - http.server's names

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.seen.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def expected_signature(seen: dict[str, Any], host: str) -> tuple[str, str]:
    """(credential scope, signature) per the SigV4 spec for the request the server saw."""
    authorization = seen["headers"]["authorization"]
    fields = dict(part.strip().split("=", 1) for part in authorization.split(" ", 1)[1].split(","))
    signed = fields["SignedHeaders"].split(";")
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    headers["host"] = host
    canonical = "\n".join(
        [
            seen["method"],
            seen["path"],
            "",
            "".join(f"{h}:{headers[h].strip()}\n" for h in signed),
            ";".join(signed),
            hashlib.sha256(seen["body"]).hexdigest(),
        ]
    )
    stamp = headers["x-amz-date"]
    scope = f"{stamp[:8]}/us-east-1/execute-api/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{SECRET}".encode()
    for part in (stamp[:8], "us-east-1", "execute-api", "aws4_request"):
        key = _hmac(key, part)
    return scope, hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_a_sigv4_request_carries_a_signature_the_spec_reproduces(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    body = '{"inputs": [[0.0, 1.0]]}'
    url = f"{server}/models/digits-mlp/predict"
    assert main(["post", url, "-d", body, "--region", "us-east-1"]) == 0
    assert capsys.readouterr().out.strip() == '{"ok": true}'
    (seen,) = Recorder.seen
    assert seen["body"] == body.encode()
    scope, signature = expected_signature(seen, server.removeprefix("http://"))
    authorization = seen["headers"]["authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential=testing/{scope}, ")
    assert "content-type" in authorization and "host" in authorization
    assert authorization.endswith(f"Signature={signature}")


def test_a_changed_body_would_not_verify(server: str) -> None:
    assert main(["post", f"{server}/x", "-d", "{}", "--region", "us-east-1"]) == 0
    (seen,) = Recorder.seen
    _, signature = expected_signature({**seen, "body": b"{ }"}, server.removeprefix("http://"))
    assert not seen["headers"]["authorization"].endswith(signature)


def test_a_jwt_goes_as_a_bearer_token_unsigned(server: str) -> None:
    assert main(["get", f"{server}/v2/health/ready", "--token", "eyJ.a.b"]) == 0
    (seen,) = Recorder.seen
    assert seen["headers"]["authorization"] == "Bearer eyJ.a.b"
    assert "x-amz-date" not in seen["headers"]


def test_the_region_comes_from_the_api_url() -> None:
    assert region_of("https://abc123.execute-api.eu-west-1.amazonaws.com/v2") == "eu-west-1"
    with pytest.raises(ValueError, match="not an execute-api URL"):
        region_of("http://127.0.0.1:8080/v2")


def test_without_boto3_sigv4_says_which_extra_in_one_line(
    server: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The base install has no boto3; README's `python -m infra.call POST ...` then named no
    # extra and ended in a traceback.
    monkeypatch.setitem(sys.modules, "boto3", None)
    assert main(["post", f"{server}/x", "-d", "{}", "--region", "us-east-1"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "python -m infra.call: error: S3 and AWS access needs boto3, which is not installed: "
        "pip install 'aiaas[aws]'"
    ]
    assert Recorder.seen == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["get", "http://127.0.0.1:8080/v2"], "not an execute-api URL; pass --region"),
        (["post", "ftp://host/x", "--token", "t"], "not an http(s) URL"),
        (["post", "http://127.0.0.1:9/x", "--token", "t", "-d", "@missing.json"], "missing.json"),
    ],
)
def test_a_bad_url_or_file_is_one_line_not_a_traceback(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("python -m infra.call: error: ") and says in line


def test_no_credentials_is_one_error_line_that_names_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    """Was a bare line of its own; now the `python -m infra.call: error:` line of every other
    failure, naming --token for a JWT authorizer."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["get", "https://abc.execute-api.eu-west-1.amazonaws.com/v2"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("python -m infra.call: error: no AWS credentials found")
    assert "--token" in line


def test_help_keeps_the_examples_one_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    lines = capsys.readouterr().out.splitlines()
    assert '    python -m infra.call GET "$API_URL/control/models"' in lines
