"""A request a OneHotEncoder refuses is told which input and which values the model does not
know (`unseen_values`), and never a column the graph does not show for certain.

Real skl2onnx exports with default options: a ColumnTransformer of two string columns and a
number (one graph input per column: `city`, `color`, `n`), a OneHotEncoder over a [N, 2]
string tensor (one input `X`, a Gather picks each column), an int64 column (a Cast between).
Hand-built graphs: a column picked out of concatenated inputs is traced; an encoder fed
through a Gather on rows (axis 0) is not, and only its categories are said.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from functions.runtime import category_graph
from functions.runtime.cache import ModelInMemory
from functions.runtime.model import LoadedModel
from functions.runtime.ort_errors import ModelRefused
from tests import onnx_factory

CITIES = tuple(f"city{i:02d}" for i in range(30))
COLORS = ("blue", "green", "red")
HINT = (
    "scikit-learn's OneHotEncoder(handle_unknown='ignore') exports a model that encodes an "
    "unseen category as zeros"
)


def frame(rows: int = 60) -> Any:
    import pandas as pd

    at = np.arange(rows)
    return pd.DataFrame(
        {
            "city": np.asarray(CITIES, dtype=object)[at % len(CITIES)],
            "color": np.asarray(COLORS, dtype=object)[at % len(COLORS)],
            "n": at.astype(np.float32),
        }
    )


@functools.cache
def exports() -> dict[str, bytes]:
    """skl2onnx exports (default options) by kind: columns, matrix, ints."""
    data = frame()
    y = np.arange(len(data)) % 2
    columns = ColumnTransformer(
        [("c", OneHotEncoder(), ["city", "color"]), ("n", StandardScaler(), ["n"])]
    )
    by_column = Pipeline([("prep", columns), ("clf", LogisticRegression())]).fit(data, y)
    strings = data[["color", "city"]].to_numpy()
    matrix = Pipeline([("oh", OneHotEncoder()), ("clf", LogisticRegression())]).fit(strings, y)
    ints = data.assign(k=(np.arange(len(data)) % 4).astype(np.int64))[["k", "n"]]
    by_int = ColumnTransformer([("k", OneHotEncoder(), ["k"]), ("n", "passthrough", ["n"])])
    int_pipeline = Pipeline([("prep", by_int), ("clf", LogisticRegression())]).fit(ints, y)
    return {
        "columns": to_onnx(by_column, data[:1]).SerializeToString(),
        "matrix": to_onnx(
            matrix, initial_types=[("X", StringTensorType([None, 2]))]
        ).SerializeToString(),
        "ints": to_onnx(int_pipeline, ints[:1]).SerializeToString(),
    }


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LoadedModel]:
    work = tmp_path_factory.mktemp("unseen")
    loaded = {}
    for kind, body in exports().items():
        path = work / f"{kind}.onnx"
        path.write_bytes(body)
        loaded[kind] = LoadedModel(onnx_factory.manifest_for(path, kind, "1"), path)
    return loaded


def refused(model: LoadedModel, inputs: dict[str, np.ndarray]) -> str:
    with pytest.raises(ModelRefused) as caught:
        model.predict(inputs)
    return caught.value.reason


def strings(*values: str) -> np.ndarray:
    return np.array(values, dtype=object)[:, None]


def columns_request(cities: tuple[str, ...], colors: tuple[str, ...]) -> dict[str, np.ndarray]:
    n = np.zeros((len(cities), 1), dtype=np.float32)
    return {"city": strings(*cities), "color": strings(*colors), "n": n}


def test_the_input_and_its_unseen_value_are_named_and_the_success_path_reads_nothing(models):
    model = models["columns"]
    assert model.predict(columns_request(("city01",), ("red",)))["output_label"].shape == (1,)
    assert model.encoders._found is None  # nothing read from the graph until a refusal

    reason = refused(model, columns_request(("city01", "city02"), ("red", "purple")))

    assert reason == (
        "input 'color': 'purple' is not a category the model was trained on (it knows 3: "
        f"'blue', 'green', 'red'); {HINT}"
    )


def test_many_values_and_categories_are_capped_and_a_long_value_is_cut(models):
    unseen = ("Paris", "x" * 5000, "Oslo", "Paris", "Rome", "Lima")
    reason = refused(models["columns"], columns_request(unseen, ("red",) * len(unseen)))

    assert reason == (
        f"input 'city': 'Paris', '{'x' * 37}...', 'Oslo' and 2 more are not categories the model "
        "was trained on (it knows 30: 'city00', 'city01', 'city02', 'city03', 'city04' and 25 "
        f"more); {HINT}"
    )
    assert len(reason) < 400


def test_a_column_of_one_string_tensor_is_named_by_its_index(models):
    reason = refused(models["matrix"], {"X": np.array([["red", "city03"], ["red", "Berlin"]])})
    assert reason.startswith("input 'X', column 1: 'Berlin' is not a category the model ")


def test_an_int64_column_through_a_cast(models):
    inputs = {"k": np.array([[1], [7]], dtype=np.int64), "n": np.zeros((2, 1), np.float32)}
    assert refused(models["ints"], inputs) == (
        f"input 'k': 7 is not a category the model was trained on (it knows 4: 0, 1, 2, 3); {HINT}"
    )


def test_a_model_loaded_from_memory_reads_its_encoders_at_load(models, tmp_path):
    body = exports()["columns"]
    manifest = models["columns"].manifest
    model = LoadedModel(manifest, ModelInMemory(body))
    assert model.encoders._found is not None and len(model.encoders._found) == 2
    reason = refused(model, columns_request(("Oslo",), ("red",)))
    assert reason.startswith("input 'city': 'Oslo' is not a category")


def test_a_model_without_ml_ops_is_not_walked_at_load(models, tmp_path):
    """A model in memory is read at load: one that imports no ai.onnx.ml ops has no encoder,
    and its graph (with its weights, up to GBs) is stepped over, not walked or searched."""
    plain = onnx_factory.linear_classifier(tmp_path / "plain.onnx").read_bytes()
    assert not category_graph.imports_ml_ops(plain)
    assert category_graph.imports_ml_ops(exports()["columns"])
    model = LoadedModel(models["columns"].manifest, ModelInMemory(exports()["columns"]))
    assert model.encoders._found


def encoder_model(path: Path, nodes: list[Any], widths: dict[str, int], **tensors: Any) -> Path:
    """String inputs of `widths` columns, `nodes` ending in a OneHotEncoder named enc of
    categories a, b (output y), initializers `tensors`."""
    encoder = helper.make_node(
        "OneHotEncoder",
        ["picked"],
        ["y"],
        name="enc",
        domain="ai.onnx.ml",
        cats_strings=["a", "b"],
        zeros=0,
    )
    graph = helper.make_graph(
        [*nodes, encoder],
        "encoder",
        [
            helper.make_tensor_value_info(n, TensorProto.STRING, [None, w])
            for n, w in widths.items()
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(value, name) for name, value in tensors.items()],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_a_column_of_concatenated_inputs_picked_by_a_constant_is_traced(tmp_path):
    index = numpy_helper.from_array(np.array([-1], dtype=np.int64))
    nodes = [
        helper.make_node("Concat", ["s", "t"], ["both"], axis=1),
        helper.make_node("Constant", [], ["at"], value=index),
        helper.make_node("Gather", ["both", "at"], ["picked"], axis=1),
    ]
    path = encoder_model(tmp_path / "concat.onnx", nodes, {"s": 1, "t": 2})
    model = LoadedModel(onnx_factory.manifest_for(path, "concat", "1"), path)

    inputs = {"s": strings("zz"), "t": np.array([["zz", "c"]], dtype=object)}
    assert refused(model, inputs).startswith("input 't', column 1: 'c' is not a category ")


def test_an_encoder_fed_through_an_untraced_op_names_its_categories_only(tmp_path):
    """Gather on rows (axis 0) picks rows, not a column: no input is named."""
    nodes = [helper.make_node("Gather", ["s", "at"], ["picked"], axis=0)]
    path = encoder_model(tmp_path / "rows.onnx", nodes, {"s": 1}, at=np.array([0], np.int64))
    encoders = category_graph.encoders(path.read_bytes())
    assert encoders == {"enc": category_graph.Encoder("enc", ("a", "b"), None)}
    model = LoadedModel(onnx_factory.manifest_for(path, "rows", "1"), path)

    assert refused(model, {"s": strings("c", "a")}) == (
        "OneHotEncoder 'enc' was given a category the model was not trained on (it knows 2: "
        f"'a', 'b'); {HINT}"
    )


def test_the_field_numbers_are_onnx_s():
    fields = {
        onnx.ModelProto: {
            "graph": category_graph.MODEL_GRAPH,
            "opset_import": category_graph.MODEL_OPSET_IMPORT,
        },
        onnx.OperatorSetIdProto: {"domain": category_graph.OPSET_DOMAIN},
        onnx.GraphProto: {
            "node": category_graph.GRAPH_NODE,
            "initializer": category_graph.GRAPH_INITIALIZER,
            "input": category_graph.GRAPH_INPUT,
        },
        onnx.NodeProto: {
            "input": category_graph.NODE_INPUT,
            "output": category_graph.NODE_OUTPUT,
            "name": category_graph.NODE_NAME,
            "op_type": category_graph.NODE_OP_TYPE,
            "attribute": category_graph.NODE_ATTRIBUTE,
        },
        onnx.AttributeProto: {
            "name": category_graph.ATTRIBUTE_NAME,
            "i": category_graph.ATTRIBUTE_I,
            "t": category_graph.ATTRIBUTE_T,
            "ints": category_graph.ATTRIBUTE_INTS,
            "strings": category_graph.ATTRIBUTE_STRINGS,
        },
        onnx.ValueInfoProto: {"name": category_graph.VALUE_INFO_NAME},
        onnx.TensorProto: {
            "data_type": category_graph.TENSOR_DATA_TYPE,
            "int32_data": category_graph.TENSOR_INT32_DATA,
            "int64_data": category_graph.TENSOR_INT64_DATA,
            "name": category_graph.TENSOR_NAME,
            "raw_data": category_graph.TENSOR_RAW_DATA,
        },
    }
    for message, numbers in fields.items():
        for name, number in numbers.items():
            assert message.DESCRIPTOR.fields_by_name[name].number == number, (message, name)
    assert (TensorProto.INT32, TensorProto.INT64) == (category_graph.INT32, category_graph.INT64)
