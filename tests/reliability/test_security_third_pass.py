"""Security, third pass: what a token holder (or a proxy in front) could still turn into a 500
or read that it should not. Over real HTTP to one `aiaas serve` with a token, and the real
stores (directory and S3 on moto).

- A number as text past 4,300 digits made `int()` raise ValueError: a 500 from one query
  parameter (`top_k`) or one header (`Inference-Header-Content-Length`).
- A missing object's 404 named the store (`in store /home/.../store`, or `s3://bucket/prefix`)
  to any caller of the control plane: where the registry lives is the operator's to know.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import httpx
import pytest

from functions.runtime.errors import NotFound
from functions.runtime.store import ObjectStore
from tests.functions.test_predict_events import MODEL, publish_digits
from tests.infra.test_serve import ServeProcess, start_serve

TOKEN = "tok-third-5Rw2"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROW = [0.5] * 64
HUGE = "9" * 5000  # past Python's 4,300-digit limit on int() of text


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    store, _ = publish_digits(tmp_path_factory.mktemp("third"))
    yield from start_serve(store, env={"AIAAS_API_TOKEN": TOKEN}, headers=AUTH)


def post(
    server: ServeProcess, path: str, headers: dict[str, str] | None = None, **kwargs: object
) -> httpx.Response:
    return httpx.post(server.base + path, headers=AUTH | (headers or {}), timeout=30, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [HUGE, "0" * 5000 + "3"], ids=["huge", "zero-padded"])
def test_a_top_k_of_thousands_of_digits_is_a_400(served: ServeProcess, value: str) -> None:
    answer = post(served, f"/models/{MODEL}/predict?top_k={value}", json={"inputs": [ROW]})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error.startswith("top_k must be an integer from 1 to 1000; got '"), error
    assert len(error) < 200, error  # the value is not echoed whole


def binary_infer(length: str) -> tuple[bytes, dict[str, str]]:
    header = (
        b'{"inputs":[{"name":"x","datatype":"FP32","shape":[1,64],'
        b'"parameters":{"binary_data_size":256}}]}'
    )
    headers = {"Inference-Header-Content-Length": length or str(len(header))}
    return header + struct.pack("64f", *ROW), headers


@pytest.mark.parametrize("route", ["infer", "explain"])
@pytest.mark.parametrize("length", [HUGE, "0" * 5000], ids=["huge", "zeros"])
def test_an_oip_header_length_of_thousands_of_digits_is_a_400(
    served: ServeProcess, route: str, length: str
) -> None:
    body, headers = binary_infer(length)
    answer = post(served, f"/v2/models/{MODEL}/{route}", content=body, headers=headers)
    if length.strip("0"):
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error.startswith("Inference-Header-Content-Length is 9999"), error
        assert error.endswith(f"... but the body has only {len(body)} bytes"), error
    else:  # zero: no JSON header at all, which the codec says
        assert answer.status_code == 400, answer.text
    body, headers = binary_infer("")  # the same request, framed right, is answered
    assert post(served, f"/v2/models/{MODEL}/infer", content=body, headers=headers).is_success


def test_a_missing_object_s_404_does_not_name_the_store(served: ServeProcess) -> None:
    key = f"batch/{MODEL}/input/none.csv"
    answer = post(
        served, f"/control/models/{MODEL}/compare", json={"a": "1", "b": "1", "data": key}
    )
    assert (answer.status_code, answer.json()) == (404, {"error": f"no object {key!r}"})
    assert str(served.log.parent) not in answer.text


def test_neither_store_names_itself_to_callers(store: ObjectStore) -> None:
    """A bucket name (or a home directory) is for the operator's log and CLI, not callers."""
    with pytest.raises(NotFound) as caught:
        store.get_bytes("batch/m/input/none.csv")
    assert caught.value.public_message == "no object 'batch/m/input/none.csv'"
    assert store.uri in caught.value.message  # the operator's CLI still says which store
