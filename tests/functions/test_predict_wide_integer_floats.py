"""A 64-bit integer sent as a JSON float past 2^53 is refused, not answered for another value.

orjson reads `9007199254740993.0` as the float 9007199254740992.0, and both the OIP and the
simple JSON form took it as the integer ...992: a 200 for a value the caller never sent (OIP
hunt). Written as an integer, the same value is read exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from onnx import TensorProto, helper

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_events import body_of, http_event

TYPES = {"INT64": TensorProto.INT64, "UINT64": TensorProto.UINT64}


def served(tmp_path: Path, datatype: str) -> PredictService:
    kind = TYPES[datatype]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", kind, [None, 3])],
        [helper.make_tensor_value_info("y", kind, [None, 3])],
    )
    path = tmp_path / "m.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
                     .SerializeToString())  # fmt: skip
    store = LocalStore(tmp_path / "store")
    Registry(store).publish(onnx_factory.manifest_for(path, "m", "1"), path)
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    return service_from_env({"AIAAS_MODEL": "m"}, pool)


def ask(service: PredictService, datatype: str, data: str) -> tuple[int, object]:
    infer = (
        '{"inputs":[{"name":"x","shape":[1,3],"datatype":"'
        + datatype
        + '","data":['
        + data
        + "]}]}"
    )
    simple = '{"inputs":[[' + data + "]]}"
    oip = service.handle(http_event("POST", "/v2/models/m/infer", infer))
    plain = service.handle(http_event("POST", "/models/m/predict", simple))
    assert oip["statusCode"] == plain["statusCode"], (oip["body"], plain["body"])
    if oip["statusCode"] != 200:
        return oip["statusCode"], (body_of(oip)["error"], body_of(plain)["error"])
    return 200, (body_of(oip)["outputs"][0]["data"], body_of(plain)["outputs"]["y"][0])


@pytest.mark.parametrize(
    ("datatype", "data", "sent"),
    [
        ("INT64", "9007199254740993.0, 0, 0", "9007199254740992"),
        ("INT64", "100000000000000001.0, 0, 0", "100000000000000000"),
        ("INT64", "-9007199254740993.0, 1, 2", "-9007199254740992"),
        ("UINT64", "18446744073709550591.0, 0, 0", "18446744073709549568"),
    ],
)
def test_a_rounded_float_is_refused_naming_what_to_send(
    tmp_path: Path, datatype: str, data: str, sent: str
) -> None:
    status, errors = ask(served(tmp_path, datatype), datatype, data)
    assert status == 422
    for error in errors:  # type: ignore[union-attr]
        assert f"past 2^53 was read as {sent}, maybe not the value sent" in error, error
        assert "write it as an integer" in error


def test_the_same_values_as_integers_and_small_floats_are_answered(tmp_path: Path) -> None:
    service = served(tmp_path, "INT64")
    assert ask(service, "INT64", "9007199254740993, 0, 0") == (
        200, ([9007199254740993, 0, 0], [9007199254740993, 0, 0])
    )  # fmt: skip
    assert ask(service, "INT64", "5.0, 9007199254740993, 7") == (
        200, ([5, 9007199254740993, 7], [5, 9007199254740993, 7])
    )  # fmt: skip
    assert json.dumps(ask(service, "INT64", "9007199254740991.0, 0, 0")[1]).count("991") == 2


def test_a_refusal_quoting_a_wide_integer_in_a_body_holding_400_digits_is_a_400(
    tmp_path: Path,
) -> None:
    """The refusal looks the number's digits up in the body; a run of 400 digits elsewhere
    (an `id`) overflowed float() there: a 500 "internal error" for a caller's mistake."""
    service = served(tmp_path, "INT64")
    body = (
        '{"id": "' + "9" * 400 + '", "inputs": [{"name": "x", "shape": [1, 3], "datatype": '
        '"INT64", "data": [1, 2, 3]}], "outputs": [{"name": "y", "parameters": '
        '{"binary_data": 100000000000000000000000}}]}'
    )
    answer = service.handle(http_event("POST", "/v2/models/m/infer", body))
    assert answer["statusCode"] == 400, answer["body"]
    assert body_of(answer)["error"] == (
        "output 'y' parameter 'binary_data' must be true or false; got 100000000000000000000000"
    )
