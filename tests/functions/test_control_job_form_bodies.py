"""The control plane's Lambda handler given a batch job's file as `curl -d` and `curl -F` send it
(hunt_csvquirks 1), in API Gateway v2 events shaped from the golden one (events/control/): the
same 400 as `aiaas serve` answers (tests/infra/test_serve_job_uploads_as_sent.py), nothing placed.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from functions.control.app import create_app
from functions.control.handler import _PathAsGiven
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_control_careless_clients import golden

MODEL = "digits-mlp"
ROWS = b"x_0,x_1,x_2,x_3,note\r\n1,2,3,4,a\r\n0.5,0,-1,2,b\r\n"
BOUNDARY = "------------------------d74496d66958873e"


@pytest.fixture
def served(tmp_path: Path) -> tuple[Any, LocalStore]:
    store = LocalStore(tmp_path / "store")
    onnx = onnx_factory.linear_classifier(tmp_path / "linear.onnx")
    Registry(store).publish(onnx_factory.manifest_for(onnx, MODEL, "1"), onnx)
    return _PathAsGiven(create_app(store), lifespan="off"), store


def put(handler: Any, file: str, body: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
    event = golden("alias_promote.json", f"/control/batch/{MODEL}/jobs/{file}", body)
    event["requestContext"]["http"]["method"] = "PUT"
    event["headers"].pop("if-none-match")
    event["headers"]["content-type"] = content_type
    event["headers"]["content-length"] = str(len(body))
    if content_type.startswith("multipart/"):  # API Gateway passes a binary type base64-encoded
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    response = handler(event, None)
    return response["statusCode"], orjson.loads(response["body"])


def test_curl_d_and_curl_f_bodies_are_refused_through_the_lambda_handler(
    served: tuple[Any, LocalStore],
) -> None:
    handler, store = served
    glued = ROWS.replace(b"\r", b"").replace(b"\n", b"")  # what curl -d @rows.csv sends
    status, body = put(handler, "glued.csv", glued, "application/x-www-form-urlencoded")
    assert status == 400
    assert "curl -d" in body["error"] and "--data-binary @glued.csv" in body["error"]
    form = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="rows.csv"\r\n'
            f"Content-Type: text/csv\r\n\r\n"
        ).encode()
        + ROWS
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    status, body = put(handler, "form.csv", form, f"multipart/form-data; boundary={BOUNDARY}")
    assert status == 400
    assert body["error"].startswith("the body is a multipart/form-data upload (curl -F")
    assert not store.exists(f"batch/{MODEL}/input/glued.csv")
    assert not store.exists(f"batch/{MODEL}/input/form.csv")
    # The file itself, as --data-binary sends it (the same Content-Type as -d): placed.
    status, body = put(handler, "kept.csv", ROWS, "application/x-www-form-urlencoded")
    assert (status, body["status"]) == (202, "pending")


def test_text_rows_glued_by_curl_d_typed_text_csv_are_refused_through_the_lambda_handler(
    served: tuple[Any, LocalStore],
) -> None:
    """Text-only rows glued to the header show no number (review_revsess 3): a CSV body of one
    line is refused whatever its type, as `aiaas serve` does."""
    handler, store = served
    glued = b"x,lang" + b"great film,en" + b'"dull, long",fr'  # curl -H 'content-type: text/csv' -d
    status, body = put(handler, "reviews.csv", glued, "text/csv")
    assert status == 400
    assert "no line break" in body["error"] and "--data-binary @reviews.csv" in body["error"]
    assert not store.exists(f"batch/{MODEL}/input/reviews.csv")
