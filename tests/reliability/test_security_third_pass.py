"""Security, third pass: what a token holder (or a proxy in front) could still turn into a 500
or read that it should not. Over real HTTP to one `aiaas serve` with a token, and the real
stores (directory and S3 on moto).

- A number as text past 4,300 digits made `int()` raise ValueError: a 500 from one query
  parameter (`top_k`) or one header (`Inference-Header-Content-Length`).
- A missing object's 404 named the store (`in store /home/.../store`, or `s3://bucket/prefix`)
  to any caller of the control plane: where the registry lives is the operator's to know.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from functions.batch.handler import dispatch
from functions.control.app import create_app
from functions.control.handler import _PathAsGiven
from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.capture.setting import set_capture
from functions.runtime.errors import NotFound
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectStore
from infra.local.gateway import GatewayRequest, build_event
from tests import onnx_factory
from tests.batch_support import publish_classifier, service, sqs_for
from tests.functions import test_control_cards as card_tests
from tests.functions import test_predict_capture as capture_tests
from tests.functions.test_predict_events import MODEL, body_of, http_event, publish_digits
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


# ---- batch keys: an input named like another's report would write over it ----------------


def iris_csv(bad_row: bool) -> bytes:
    rows = ["x_0,x_1,x_2,x_3", "5.1,3.5,1.4,0.2"] + (["oops,3.5,1.4,0.2"] if bad_row else [])
    return ("\n".join(rows) + "\n").encode()


def scored_rows_csv(s3_store: S3Store, tmp_path: Path, *, bad_row: bool) -> Any:
    """The iris classifier published and `batch/iris/input/rows.csv` scored by the batch
    function; the function, for the next drop."""
    publish_classifier(s3_store, tmp_path)
    batch = service(s3_store, tmp_path)
    s3_store.put_bytes("batch/iris/input/rows.csv", iris_csv(bad_row=bad_row))
    assert (
        dispatch(batch, sqs_for(s3_store, "batch/iris/input/rows.csv"))["batchItemFailures"] == []
    )
    return batch


@pytest.mark.parametrize("named", ["rows.csv.errors.jsonl", "rows.csv.ERRORS.jsonl.gz"])
def test_a_dropped_input_named_like_a_report_leaves_that_report(
    s3_store: S3Store, tmp_path: Path, named: str
) -> None:
    """`rows.csv.errors.jsonl` scored into output/rows.csv.errors.jsonl: rows.csv's rejected
    rows, written over with the other file's scores (lost, and read as the wrong thing)."""
    batch = scored_rows_csv(s3_store, tmp_path, bad_row=True)
    report = s3_store.get_bytes("batch/iris/output/rows.csv.errors.jsonl")
    assert b"oops" in report
    key = f"batch/iris/input/{named}"
    s3_store.put_bytes(key, b'{"x_0": 5.1, "x_1": 3.5, "x_2": 1.4, "x_3": 0.2}\n')
    assert dispatch(batch, sqs_for(s3_store, key))["batchItemFailures"] == []
    assert s3_store.get_bytes("batch/iris/output/rows.csv.errors.jsonl") == report
    summary = json.loads(s3_store.get_bytes(f"batch/iris/output/{named}.summary.json"))
    assert (summary["status"], summary["error"]) == (
        "failed",
        f"{key}: a name ending in '.errors.jsonl' is where another input's rejected rows are "
        "written; rename it (e.g. to end in '-errors.jsonl')",
    )


def test_a_dropped_file_named_like_a_summary_leaves_that_summary(
    s3_store: S3Store, tmp_path: Path
) -> None:
    """A name batch does not read failed, and its failure removed "its" output first: for
    `rows.csv.summary.json`, rows.csv's summary, so a scored job read as pending again."""
    batch = scored_rows_csv(s3_store, tmp_path, bad_row=False)
    summary = s3_store.get_bytes("batch/iris/output/rows.csv.summary.json")
    key = "batch/iris/input/rows.csv.summary.json"
    s3_store.put_bytes(key, b"{}")
    assert dispatch(batch, sqs_for(s3_store, key))["batchItemFailures"] == []
    assert s3_store.get_bytes("batch/iris/output/rows.csv.summary.json") == summary
    refused = json.loads(s3_store.get_bytes(f"{key.replace('input', 'output')}.summary.json"))
    assert (refused["status"], refused["error"].split(";")[0]) == (
        "failed",
        f"{key}: unsupported input format '.json'",
    )


def test_a_file_batch_does_not_read_beside_an_input_is_no_twin_of_it(
    s3_store: S3Store, tmp_path: Path
) -> None:
    """`rows.npz` dropped beside `rows.npy` (whose output it names) is refused; it used to
    count as a second writer of rows.npz too, so every later run of rows.npy failed."""
    publish_classifier(s3_store, tmp_path)
    batch = service(s3_store, tmp_path)
    s3_store.put_bytes("batch/iris/input/rows.npz", b"PK not read")
    array = io.BytesIO()
    np.save(array, np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32))
    s3_store.put_bytes("batch/iris/input/rows.npy", array.getvalue())
    event = sqs_for(s3_store, "batch/iris/input/rows.npz", "batch/iris/input/rows.npy")
    assert dispatch(batch, event)["batchItemFailures"] == []
    scored = json.loads(s3_store.get_bytes("batch/iris/output/rows.npy.summary.json"))
    assert (scored["status"], scored["scored_rows"]) == ("succeeded", 1), scored
    assert s3_store.exists("batch/iris/output/rows.npz")
    refused = json.loads(s3_store.get_bytes("batch/iris/output/rows.npz.summary.json"))
    assert refused["status"] == "failed"


def test_an_upload_named_like_a_report_is_a_400_and_stores_nothing(
    served: ServeProcess,
) -> None:
    path = f"/control/batch/{MODEL}/jobs/rows.csv.errors.jsonl"
    answer = httpx.put(served.base + path, content=b"{}\n", headers=AUTH, timeout=30)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"].startswith(
        f"batch/{MODEL}/input/rows.csv.errors.jsonl: a name ending in '.errors.jsonl' is where"
    )
    listed = httpx.get(served.base + f"/control/batch/{MODEL}/jobs", headers=AUTH, timeout=30)
    assert listed.json()["jobs"] == []


# ---- data capture: a denied feature sent in any nesting OIP takes stays out of the store ----


@pytest.mark.parametrize(
    "data",
    [
        [[[1, 81234, 3, 4]]],  # one level deeper than the shape
        [[1, 81234], [3, 4]],  # split across rows of another width
        [[1], [81234], [3], [4]],  # one value a row
        [[1, 81234, 3, 4, 2, 51234, 6, 7]],  # two rows run together
    ],
    ids=["deeper", "split", "columns", "joined"],
)
def test_a_denied_feature_in_oip_data_of_any_nesting_is_not_captured(
    tmp_path: Path, data: list[object]
) -> None:
    """The OIP codec reads `data` row-major whatever its nesting; the redactor nulled a
    denied column only in rows exactly the features' width, so these kept `income` whole."""
    registry = Registry(LocalStore(tmp_path / "store"))
    capture_tests.publish(registry, tmp_path)
    set_capture(registry, capture_tests.MODEL, sample=1.0, deny=["income"], actor="test")
    svc = capture_tests.service(registry, tmp_path)
    rows = 2 if "51234" in json.dumps(data) else 1
    tensor = {"name": "x", "shape": [rows, 4], "datatype": "FP32", "data": data}
    capture_tests.predict(svc, {"inputs": [tensor]}, capture_tests.INFER)
    svc.capture.flush()
    (line,) = capture_tests.lines(registry.store)
    captured = line["request"]["inputs"][0]["data"]
    assert "1234" not in json.dumps(captured), captured
    assert captured == [1, None, 3, 4] + ([2, None, 6, 7] if rows == 2 else [])


# ---- model cards: only what the manifest lists, as it lists it, and never run --------------


@pytest.fixture
def cards(store: ObjectStore, classifier_onnx: Path, tmp_path: Path) -> Any:
    """The control plane's Lambda handler over a store holding iris:1 with a listed card."""
    (tmp_path / "card.md").write_text(card_tests.CARD)
    manifest = onnx_factory.manifest_for(classifier_onnx, "iris", "1")
    Registry(store).publish(manifest, classifier_onnx, {"card/card.md": tmp_path / "card.md"})
    return _PathAsGiven(create_app(store), lifespan="off")


def test_a_card_file_the_manifest_does_not_list_is_never_served(
    cards: Any, store: ObjectStore
) -> None:
    """An object under card/ that publish did not write (a store writer's page) was served
    from the API's origin as text/html, able to run script there."""
    store.put_bytes("models/iris/versions/1/card/x.html", b"<script>alert(1)</script>")
    status, kind, body = card_tests.get(cards, f"{card_tests.VERSION}/1/card/x.html")
    assert (status, kind) == (404, "application/json"), body
    assert json.loads(body) == {
        "error": "model iris:1 has no card file 'x.html' (its card files: card/card.md)"
    }


def test_a_changed_card_is_never_served_and_a_served_one_runs_nothing(
    cards: Any, store: ObjectStore
) -> None:
    answer = cards(card_event(f"{card_tests.VERSION}/1/card"), None)
    assert answer["statusCode"] == 200
    assert answer["headers"]["content-security-policy"] == "sandbox"
    assert answer["headers"]["x-content-type-options"] == "nosniff"
    store.put_bytes("models/iris/versions/1/card/card.md", b"# iris:1\n<script>x()</script>\n")
    status, _, body = card_tests.get(cards, f"{card_tests.VERSION}/1/card")
    assert (status, json.loads(body)) == (
        503,
        {"error": "model iris:1's card/card.md failed its integrity check"},
    )


def card_event(path: str) -> dict[str, Any]:
    request = GatewayRequest("GET", path, "", [], b"")
    return build_event(request, "ANY", "/control/{proxy+}", {})


# ---- explain: patches counted before they are built ----------------------------------------


def test_patch_1_on_a_large_image_of_any_size_is_refused_before_building_patches(
    tmp_path: Path,
) -> None:
    """An image of any size as large as the body allows with `patch: 1` built every patch
    (810,000 for 900 x 900: 1.5 s and 250 MB of CPU and memory) before the time budget
    refused the explanation."""
    path = onnx_factory.identity(tmp_path / "img.onnx", shape=["N", 3, "H", "W"])
    store = LocalStore(tmp_path / "store")
    Registry(store).publish(onnx_factory.manifest_for(path, "img", "1"), path)
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    svc = service_from_env({"AIAAS_MODEL": "img"}, pool)
    doc = {"inputs": np.full((1, 3, 300, 300), 0.5).tolist(), "parameters": {"patch": 1}}
    response = svc.handle(http_event("POST", "/models/img/explain", json.dumps(doc)))
    assert (response["statusCode"], body_of(response)) == (
        422,
        {
            "error": "patch 1 cuts this 300 x 300 image into 90,000 patches; at most 4,096 "
            "are explained: ask for patch 5 or more"
        },
    )
