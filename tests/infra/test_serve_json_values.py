"""JSON values answered wrongly over a real `aiaas serve` (hunt_oip.md #2-#5):

- a record by feature name with one value a list, the others numbers, was a 500 (numpy could
  not stack the table), where every value a list was the 422 naming it; columns alike;
- a number or `true` among the texts of a string input was made the text "1.0" or "True" and
  scored as that category, where all numbers or all booleans were refused, and OIP's BYTES
  refuses any; now refused too;
- a refusal quoting an integer beyond 64 bits was a 500 when the body held a run of more than
  4,300 digits anywhere (an `id`): Python's int() refuses to read one;
- an integer just below INT64's minimum (-2^63 - 1, which JSON parsers read as the float
  -2^63) was told it was a float and to write an integer: now it is out of range, as one
  further below is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from onnx import TensorProto, helper

from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_serve import start_serve


def mixed_frame(path: Path) -> Path:
    """A DataFrame's two columns as skl2onnx names them: city (text) and v (float), echoed."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["city"], ["c"]), helper.make_node("Identity", ["v"], ["w"])],
        "mixed",
        [
            helper.make_tensor_value_info("city", TensorProto.STRING, ["N", 1]),
            helper.make_tensor_value_info("v", TensorProto.FLOAT, ["N", 1]),
        ],
        [
            helper.make_tensor_value_info("c", TensorProto.STRING, ["N", 1]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, ["N", 1]),
        ],
    )
    return onnx_factory.save(graph, path)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("json-values")
    models: dict[str, tuple[Path, list[str]]] = {
        "feat": (onnx_factory.identity(root / "f.onnx", shape=["N", 4]), ["--features", "a,b,c,d"]),
        "texts": (onnx_factory.identity(root / "t.onnx", TensorProto.STRING, ["N", 2]), []),
        "frame": (mixed_frame(root / "m.onnx"), []),
        "ints": (onnx_factory.identity(root / "i.onnx", TensorProto.INT64), []),
        "ident": (onnx_factory.identity(root / "x.onnx"), []),
        "clf": (
            onnx_factory.linear_classifier(root / "c.onnx"),
            ["--task", "classification", "--labels", "p,q,r", "--activation", "softmax"],
        ),
    }
    for name, (path, options) in models.items():
        argv = ["--store", str(root / "store"), "publish", str(path), "--name", name]
        assert main([*argv, *options, "--no-progress"]) == 0
    for server in start_serve(root / "store"):
        with httpx.Client(base_url=server.base, timeout=60) as http:
            yield http


def post(client: httpx.Client, path: str, body: Any) -> tuple[int, Any]:
    answer = (
        client.post(path, content=body) if isinstance(body, str) else client.post(path, json=body)
    )
    return answer.status_code, answer.json()


RECORD = {"a": 6.7, "b": 3.0, "c": 5.2, "d": [2.3]}


@pytest.mark.parametrize("route", ["predict", "explain"])
def test_a_list_among_a_records_numbers_is_the_422_naming_it(
    client: httpx.Client, route: str
) -> None:
    answer = post(client, f"/models/feat/{route}", {"instances": [RECORD]})
    assert answer == (422, {"error": "instances[0].d must be a number (float32); got [2.3]"})


def test_a_list_among_columns_of_numbers_is_the_422_naming_it(client: httpx.Client) -> None:
    columns = {"a": [6.7, [1]], "b": [3.0, 3], "c": [5.2, 5], "d": [2.3, 2]}
    answer = post(client, "/models/feat/predict", {"inputs": columns})
    assert answer == (422, {"error": "inputs.a[1] must be a number (float32); got [1]"})
    every = {key: [value] for key, value in RECORD.items() if key != "d"} | {"d": [2.3]}
    status, body = post(client, "/models/feat/predict", {"inputs": every})
    assert status == 200, body  # numbers alone are answered as before
    assert body["outputs"]["y"] == [[6.7, 3.0, 5.2, 2.3]]


NUMBER_AMONG_TEXTS = (
    "input 'x' expects string; got a number where text goes: send each value as a JSON string"
)
TRUE_AMONG_TEXTS = (
    "input 'city' expects string; got true/false values: send the text the training data held "
    '("True" / "False" from Parquet or pandas); the model card lists each column\'s categories'
)


@pytest.mark.parametrize("value", [1.0, 5])
def test_a_number_among_texts_is_refused_not_made_text(client: httpx.Client, value: Any) -> None:
    answer = post(client, "/models/texts/predict", {"inputs": [["a", value]]})
    assert answer == (422, {"error": NUMBER_AMONG_TEXTS})  # was a 200 scoring "1.0", "5"
    answer = post(client, "/models/texts/predict", {"instances": [["a", "b"], ["c", value]]})
    assert answer == (422, {"error": NUMBER_AMONG_TEXTS})


def test_true_among_a_frames_texts_is_refused_not_made_text(client: httpx.Client) -> None:
    rows = [{"city": "a", "v": 1}, {"city": True, "v": 2}]
    answer = post(client, "/models/frame/predict", {"instances": rows})
    assert answer == (422, {"error": TRUE_AMONG_TEXTS})  # was a 200 scoring "True"
    columns = {"city": ["a", False], "v": [1, 2]}
    assert post(client, "/models/frame/predict", {"inputs": columns}) == (
        422,
        {"error": TRUE_AMONG_TEXTS},
    )


def test_texts_that_read_as_numbers_are_still_texts(client: httpx.Client) -> None:
    status, body = post(client, "/models/texts/predict", {"inputs": [["1.0", "True"]]})
    assert (status, body["outputs"]) == (200, {"y": [["1.0", "True"]]})
    rows = [{"city": "a", "v": 1}, {"city": "5", "v": 2}]
    status, body = post(client, "/models/frame/predict", {"instances": rows})
    assert (status, body["outputs"]) == (200, {"c": [["a"], ["5"]], "w": [[1.0], [2.0]]})


DIGITS = "1" * 5000  # past the 4,300 digits Python's int() reads from text
TENSOR = '{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]}'


def test_a_wide_flag_beside_thousands_of_digits_is_its_400(client: httpx.Client) -> None:
    body = (
        f'{{"id":"{DIGITS}","inputs":[{TENSOR}],'
        '"parameters":{"binary_data_output":100000000000000000000}}'
    )
    assert post(client, "/v2/models/ident/infer", body) == (  # was a 500 "internal error"
        400,
        {
            "error": "request parameter 'binary_data_output' must be true or false; got "
            "100000000000000000000"
        },
    )


def test_a_wide_class_count_beside_thousands_of_digits_ranks_every_class(
    client: httpx.Client,
) -> None:
    tensor = '{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}'
    wanted = '{"name":"logits","parameters":{"classification":100000000000000000000}}'
    body = f'{{"id":"{DIGITS}","inputs":[{tensor}],"outputs":[{wanted}]}}'
    status, answer = post(client, "/v2/models/clf/infer", body)
    assert status == 200, answer  # was a 500 "internal error"
    assert answer["id"] == DIGITS
    assert answer["outputs"][0]["shape"] == [1, 3]  # every class, as 10**18 asks
    negative = body.replace(":100000000000000000000", ":-100000000000000000000")
    status, answer = post(client, "/v2/models/clf/infer", negative)
    assert status == 400, answer
    assert answer["error"].endswith("got -100000000000000000000"), answer


BELOW = "-9223372036854775809"  # -2^63 - 1
OIP_RANGE = (
    "tensor 'x' has values out of range for INT64: [-9223372036854775808, 9223372036854775807]"
)
SIMPLE_RANGE = "input 'x' expects int64; values are outside its range"
ASK_INTEGER = "a JSON float (a decimal point or exponent) past 2^53 was read as"


def int64s(first: str) -> str:
    return f'{{"inputs":[{{"name":"x","datatype":"INT64","shape":[1,3],"data":[{first},1,2]}}]}}'


@pytest.mark.parametrize("below", [BELOW, "-9223372036854776000"])
def test_an_integer_just_below_int64_is_out_of_range(client: httpx.Client, below: str) -> None:
    # Was: "a JSON float ... past 2^53 was read as -9223372036854775808 ...; write it as an
    # integer", said to an integer (-9223372036854777000, further below, was out of range).
    assert post(client, "/v2/models/ints/infer", int64s(below)) == (422, {"error": OIP_RANGE})
    for body in (f'{{"inputs":[[{below},1,2]]}}', f'{{"instances":[[{below},1,2]]}}'):
        assert post(client, "/models/ints/predict", body) == (422, {"error": SIMPLE_RANGE})


@pytest.mark.parametrize("spelled", ["-9.223372036854776e18", "-9223372036854775808.0"])
def test_a_float_at_int64s_minimum_is_still_asked_for_as_an_integer(
    client: httpx.Client, spelled: str
) -> None:
    status, body = post(client, "/v2/models/ints/infer", int64s(spelled))
    assert status == 422 and ASK_INTEGER in body["error"], body
    status, body = post(client, "/models/ints/predict", f'{{"inputs":[[{spelled},1,2]]}}')
    assert status == 422 and ASK_INTEGER in body["error"], body
    status, body = post(client, "/v2/models/ints/infer", int64s("-9223372036854775808"))
    assert (status, body["outputs"][0]["data"]) == (200, [-9223372036854775808, 1, 2])
