"""A compressed control-plane body over the limit is a 413 naming the limit: it was cut at the
limit, then inflated, and answered 400 "cut short", which named neither the size nor the fix."""

from __future__ import annotations

import asyncio
import gzip
import os
import zlib
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from functions.control import encoded_body
from functions.control.app import create_app
from functions.control.encoded_body import EncodedBody
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory

LIMIT = 4096


async def reached_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("an over-limit body must not reach the app")


def answer_to(body: bytes, chunk: int = 1024) -> tuple[int, dict[str, str]]:
    """What EncodedBody answers a gzip PUT of `body`, sent in `chunk`-byte messages."""
    parts = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    messages: list[Message] = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "PUT",
        "path": "/control/models/m/aliases/a",
        "headers": [(b"content-encoding", b"gzip"), (b"content-type", b"application/json")],
    }
    asyncio.run(EncodedBody(reached_app, plain_limit=LIMIT)(scope, receive, send))
    status = sent[0]["status"]
    return status, orjson.loads(b"".join(m.get("body", b"") for m in sent[1:]))


def test_a_compressed_body_over_the_limit_is_a_413_saying_the_limit() -> None:
    packer = zlib.compressobj(wbits=31)  # gzip; random bytes do not shrink
    packed = packer.compress(os.urandom(3 * LIMIT)) + packer.flush()
    assert len(packed) > LIMIT
    # cut just past the limit, the prefix inflated to less than it: was 400 "cut short"
    assert answer_to(packed, chunk=LIMIT + 1) == (
        413,
        {"error": f"request body is over the {LIMIT} byte limit (compressed)"},
    )


def test_a_plain_body_over_the_limit_is_a_413_too(tmp_path: Path) -> None:
    # A plain 7 MB body was taken (only a compressed one was bounded); Lambda refuses one over
    # 6 MB before the function runs, so `aiaas serve` answered what the stack would not.
    registry = Registry(LocalStore(tmp_path / "store"))
    model = onnx_factory.linear_classifier(tmp_path / "linear.onnx")
    registry.publish(onnx_factory.manifest_for(model, "iris", "1"), model)
    client = TestClient(create_app(registry.store))
    big = orjson.dumps({"version": "1", "note": "x" * (7 * 1024 * 1024)})
    for sent in (big, iter([big[:1024], big[1024:]])):  # with a Content-Length, and chunked
        answer = client.put("/control/models/iris/aliases/prod", content=sent)
        assert answer.status_code == 413
        limit = encoded_body.MAX_INFLATED_BYTES
        assert answer.json() == {"error": f"request body is over the {limit} byte limit"}
    answer = client.put("/control/models/iris/aliases/prod", json={"version": "1"})
    assert answer.status_code == 201, answer.text
    assert registry.alias("iris", "prod") == "1"


def test_a_batch_upload_over_the_limit_says_to_use_uploads(tmp_path: Path) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    model = onnx_factory.linear_classifier(tmp_path / "linear.onnx")
    registry.publish(onnx_factory.manifest_for(model, "iris", "1"), model)
    client = TestClient(create_app(registry.store))
    answer = client.put("/control/batch/iris/jobs/rows.csv", content=b"1,2,3,4\n" * 1_000_000)
    assert answer.status_code == 413
    assert answer.json()["error"].endswith(
        '; put the file under uploads/ in the bucket and POST {"source": "uploads/..."} to '
        ".../jobs instead"
    )


def test_a_raised_upload_limit_holds_for_a_gzipped_upload_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # AIAAS_CONTROL_MAX_UPLOAD_BYTES raised to 20 MB took an 8 MB CSV sent plain and refused the
    # same file gzipped (3 MB on the wire) at 6 MB inflated, without the uploads/ hint.
    monkeypatch.setattr("functions.control.batch_api.MAX_UPLOAD_BYTES", 20_000_000)
    registry = Registry(LocalStore(tmp_path / "store"))
    model = onnx_factory.linear_classifier(tmp_path / "linear.onnx")
    registry.publish(onnx_factory.manifest_for(model, "iris", "1"), model)
    client = TestClient(create_app(registry.store))
    rows = b"".join(b"%d.5,1.25,3.5,0.75\n" % i for i in range(500_000))  # ~9.4 MB
    assert 8_000_000 < len(rows) < 20_000_000
    packed = gzip.compress(rows)
    assert len(packed) < encoded_body.MAX_INFLATED_BYTES
    gz = {"content-encoding": "gzip"}
    answer = client.put("/control/batch/iris/jobs/big.csv", content=packed, headers=gz)
    assert answer.status_code == 202, answer.text
    assert registry.store.get_bytes("batch/iris/input/big.csv") == rows
    # Over the raised limit once inflated: a 413 saying where bigger files go.
    answer = client.put(
        "/control/batch/iris/jobs/huge.csv", content=gzip.compress(rows * 3), headers=gz
    )
    assert answer.status_code == 413
    assert answer.json()["error"] == (
        "request body is over the 20000000 byte limit once inflated; put the file under "
        'uploads/ in the bucket and POST {"source": "uploads/..."} to .../jobs instead'
    )
