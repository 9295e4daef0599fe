"""A base64 body in an API Gateway v2.0 event (binary content, as API Gateway sends it): the
bytes the client sent, read back exactly; anything that is not canonical base64, a clear 400."""

from __future__ import annotations

import base64

import pytest

from functions.predict.http import parse_event
from functions.predict.service import PredictService
from tests.functions.test_predict_events import (
    MODEL,
    body_of,
    digits_service,
    http_event,
    publish_digits,
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> PredictService:
    store, _ = publish_digits(tmp_path_factory.mktemp("base64"))
    return digits_service(store.parent)


@pytest.mark.parametrize(
    "body",
    [
        "eyJpbnB1dHMi!!",  # a character outside the alphabet
        "eyJp bnB1",  # a space
        "eyJ=pbnB1",  # padding inside the data
        "eyJpbnB1dHMi=",  # padding past the last quantum (the stdlib's strict decode took it)
        "eyJpbnB1d",  # a quantum cut short
    ],
)
def test_malformed_base64_bodies_are_400(service: PredictService, body: str) -> None:
    event = http_event("POST", f"/models/{MODEL}/predict")
    event.update(body=body, isBase64Encoded=True)
    response = service.handle(event)
    assert response["statusCode"] == 400
    assert body_of(response) == {"error": "request body is marked base64 but is not valid base64"}


def test_a_binary_body_reads_as_the_bytes_api_gateway_encoded() -> None:
    """Every byte value, and lengths around each padding case (the event's body encoded by
    the stdlib, as a client's bytes are by API Gateway)."""
    for size in (0, 1, 2, 3, 4, 5, 255, 256, 257, 70_000):
        raw = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
        event = http_event("POST", "/x", raw, b64=True)
        assert event["body"] == base64.b64encode(raw).decode()
        assert parse_event(event, 1 << 20).body == raw


def test_a_base64_json_body_is_answered(service: PredictService) -> None:
    """The canonical form still decodes on the predict route (the decoder's success path)."""
    body = b'{"inputs": [[' + b", ".join(b"1.0" for _ in range(64)) + b"]]}"
    response = service.handle(http_event("POST", f"/models/{MODEL}/predict", body, b64=True))
    assert response["statusCode"] == 200, body_of(response)
