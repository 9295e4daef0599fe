"""Whether a model's cost can depend on a request's values, read from real ONNX graphs
(functions/runtime/input_cost.py): `aiaas serve` never runs such a model on its event loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from bench.compare.onnx_models import cnn_onnx, transformer_onnx
from bench.models import mlp_onnx
from functions.runtime import input_cost
from functions.runtime.input_cost import LOOPS, SIZED, graph_varies, varies_with_input
from tests import onnx_factory


def test_a_loop_whose_trip_count_is_an_input_varies(tmp_path: Path) -> None:
    path = onnx_factory.looping(tmp_path / "looping.onnx")
    assert varies_with_input(path)
    assert varies_with_input(path.read_bytes())  # a model held in memory: the same answer


def test_a_size_read_from_an_input_varies_one_from_an_initializer_does_not(
    tmp_path: Path,
) -> None:
    assert varies_with_input(onnx_factory.sized_by_input(tmp_path / "sized.onnx"))
    # ConstantOfShape of a [side, side] initializer: every run costs the same
    assert not varies_with_input(onnx_factory.allocating(tmp_path / "alloc.onnx", 64))


@pytest.mark.parametrize(
    "build",
    [mlp_onnx, cnn_onnx, transformer_onnx, onnx_factory.identity, onnx_factory.even_rows],
)
def test_the_demo_models_do_not_vary(tmp_path: Path, build) -> None:
    """The digits MLP and CNN, the text transformer (bench/), and plain graphs: their cost is
    set by how many rows a request holds, which the gateway bounds otherwise."""
    assert not varies_with_input(build(tmp_path / "m.onnx"))


def _model(nodes, inputs, outputs, initializers=(), functions=()) -> bytes:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]
    model = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


X = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["A", "B"])
ONES = helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])


def test_sizes_from_the_inputs_shapes_do_not_vary_from_their_values_do() -> None:
    """Exporters size tensors from Shape -> Gather -> Concat chains: a shape, not a value."""
    from_shape = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Expand", ["x", "shape"], ["y"]),
    ]
    assert not graph_varies(_model(from_shape, [X], [Y]))
    from_values = [
        helper.make_node("Cast", ["x"], ["xi"], to=TensorProto.INT64),
        helper.make_node("ReduceMax", ["xi"], ["n"], keepdims=1),  # [1, 1]
        helper.make_node("Reshape", ["n", "flat"], ["shape"]),
        helper.make_node("ConstantOfShape", ["shape"], ["y"], value=ONES),
    ]
    flat = numpy_helper.from_array(np.array([1], np.int64), "flat")
    assert graph_varies(_model(from_values, [X], [Y], [flat]))
    # A Constant node's output is a constant, as an initializer is
    constant = [
        helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(np.array([3]))),
        helper.make_node("Tile", ["x", "reps"], ["t"]),
        helper.make_node("ConstantOfShape", ["shape"], ["y"], value=ONES),
    ]
    reps = numpy_helper.from_array(np.array([2, 2], np.int64), "reps")
    assert not graph_varies(_model(constant, [X], [Y], [reps]))


def _if_node(branch_nodes, outputs) -> onnx.NodeProto:
    branch = helper.make_graph(branch_nodes, "branch", [], outputs)
    return helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch)


COND = [
    helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
    helper.make_node("Greater", ["m", "zero"], ["cond"]),
]
ZERO = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
# An If on the input's shape (as exporters write them): the shape picks the branch, not a value.
SHAPE_COND = [
    helper.make_node("Shape", ["x"], ["s"]),
    helper.make_node("ReduceMax", ["s"], ["m"], keepdims=0),
    helper.make_node("Greater", ["m", "zero_i"], ["cond"]),
]
ZERO_I = numpy_helper.from_array(np.array(0, np.int64), "zero_i")


def test_a_loop_in_a_subgraph_varies() -> None:
    trips = numpy_helper.from_array(np.array(3, np.int64), "trips")  # even a constant count
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["c"], ["c_out"]),
            helper.make_node("Identity", ["v"], ["v_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v", TensorProto.FLOAT, ["N", 4]),
        ],
        [
            helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, ["N", 4]),
        ],
    )
    inner = [helper.make_node("Loop", ["trips", "", "x"], ["y"], body=body)]
    nested = _model([*COND, _if_node(inner, [Y])], [X], [Y], [trips, ZERO])
    assert graph_varies(nested)
    plain = [helper.make_node("Identity", ["x"], ["y"])]
    assert not graph_varies(_model([*SHAPE_COND, _if_node(plain, [Y])], [X], [Y], [ZERO_I]))


def test_a_branch_sized_by_an_outer_value_varies() -> None:
    """A subgraph reads its enclosing graph's names: a request's value among them counts."""
    outer = [*COND, helper.make_node("Cast", ["x"], ["xi"], to=TensorProto.INT64)]
    outer.append(helper.make_node("ReduceMax", ["xi"], ["n"], keepdims=1))
    branch = [helper.make_node("Range", ["start", "n1", "step"], ["y"])]
    outer.append(helper.make_node("Reshape", ["n", "scalar"], ["n1"]))
    consts = [
        ZERO,
        numpy_helper.from_array(np.array(0, np.int64), "start"),
        numpy_helper.from_array(np.array(1, np.int64), "step"),
        numpy_helper.from_array(np.zeros(0, np.int64), "scalar"),
    ]
    y = helper.make_tensor_value_info("y", TensorProto.INT64, ["M"])
    assert graph_varies(_model([*outer, _if_node(branch, [y])], [X], [y], consts))
    # the same Range between constants: not
    fixed = [helper.make_node("Range", ["start", "step", "step"], ["y"])]
    on_shape = _model([*SHAPE_COND, _if_node(fixed, [y])], [X], [y], [*consts, ZERO_I])
    assert not graph_varies(on_shape)


def test_a_model_local_function_with_a_loop_varies_where_it_is_called() -> None:
    grow = helper.make_function(
        "local",
        "Grow",
        ["a"],
        ["b"],
        [
            helper.make_node("Cast", ["a"], ["ai"], to=TensorProto.INT64),
            helper.make_node("ReduceMax", ["ai"], ["n"], keepdims=1),
            helper.make_node("ConstantOfShape", ["n"], ["b"], value=ONES),
        ],
        [helper.make_opsetid("", 17)],
    )
    calls = [helper.make_node("Grow", ["x"], ["y"], domain="local")]
    assert graph_varies(_model(calls, [X], [Y], functions=[grow]))
    plain = [helper.make_node("Identity", ["x"], ["y"])]
    assert not graph_varies(_model(plain, [X], [Y], functions=[grow]))  # never called


def test_the_weights_are_not_read(tmp_path: Path) -> None:
    """A model's raw_data is stepped over: a graph whose weights are garbage bytes past the
    headers reads the same (a 1 GB model is not paged in)."""
    path = mlp_onnx(tmp_path / "m.onnx", sizes=(64, 2048, 10))
    data = bytearray(path.read_bytes())
    start = data.index(b"\x42\x02W0") + 200  # W0's name, then its raw_data
    data[start : start + 1024] = b"\xff" * 1024  # not protobuf: read, it would fail the walk
    assert not graph_varies(bytes(data))


def test_a_graph_that_cannot_be_read_is_taken_to_vary(tmp_path: Path) -> None:
    assert varies_with_input(b"\x00\x01not an onnx model")
    assert varies_with_input(tmp_path / "gone.onnx")


def test_the_op_list_is_onnx_s() -> None:
    """Every operator named exists in onnx (ai.onnx) or onnxruntime's com.microsoft domain, and
    each input index named is one of its inputs."""
    contrib = {"BeamSearch", "GreedySearch", "Sampling", "WhisperBeamSearch"}
    for op in LOOPS - contrib:
        assert onnx.defs.has(op), op
    for op, indexes in SIZED.items():
        schema = onnx.defs.get_schema(op)
        assert max(indexes) < len(schema.inputs), (op, indexes)
    assert ort.get_available_providers()  # onnxruntime, which runs the contrib loops


def test_the_field_numbers_are_onnx_s() -> None:
    fields = {
        onnx.ModelProto: {"graph": input_cost.MODEL_GRAPH, "functions": input_cost.MODEL_FUNCTIONS},
        onnx.GraphProto: {
            "node": input_cost.GRAPH_NODE,
            "initializer": input_cost.GRAPH_INITIALIZER,
            "input": input_cost.GRAPH_INPUT,
            "sparse_initializer": input_cost.GRAPH_SPARSE_INITIALIZER,
        },
        onnx.NodeProto: {
            "input": input_cost.NODE_INPUT,
            "output": input_cost.NODE_OUTPUT,
            "op_type": input_cost.NODE_OP_TYPE,
            "attribute": input_cost.NODE_ATTRIBUTE,
            "domain": input_cost.NODE_DOMAIN,
        },
        onnx.AttributeProto: {"g": input_cost.ATTRIBUTE_G, "graphs": input_cost.ATTRIBUTE_GRAPHS},
        onnx.TensorProto: {"name": input_cost.TENSOR_NAME},
        onnx.ValueInfoProto: {"name": input_cost.VALUE_INFO_NAME},
        onnx.SparseTensorProto: {"values": input_cost.SPARSE_VALUES},
        onnx.FunctionProto: {
            "name": input_cost.FUNCTION_NAME,
            "input": input_cost.FUNCTION_INPUT,
            "node": input_cost.FUNCTION_NODE,
            "domain": input_cost.FUNCTION_DOMAIN,
        },
    }
    for message, numbers in fields.items():
        for name, number in numbers.items():
            assert message.DESCRIPTOR.fields_by_name[name].number == number, (message, name)


def test_a_model_on_disk_is_read_when_first_asked_one_in_memory_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mocker
) -> None:
    """A Lambda function never asks (its cold start skips the read): read when first asked,
    and the answer kept. A model in memory is read at load: its bytes are released once the
    session exists."""
    from functions.runtime.cache import ModelInMemory
    from functions.runtime.model import LoadedModel

    monkeypatch.setattr(
        input_cost, "EAGER", False
    )  # as on Lambda (a server in this process set it)
    path = onnx_factory.looping(tmp_path / "looping.onnx")
    manifest = onnx_factory.manifest_for(path, "looping", "1")
    reads = mocker.spy(input_cost, "varies_with_input")
    on_disk = LoadedModel(manifest, path)
    assert reads.call_count == 0
    assert on_disk.cost.varies and on_disk.cost.varies
    assert reads.call_count == 1
    in_memory = LoadedModel(manifest, ModelInMemory(path.read_bytes()))
    assert reads.call_count == 2
    assert in_memory.cost.varies and reads.call_count == 2


def test_aiaas_serve_reads_each_versions_graph_as_it_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mocker
) -> None:
    """`aiaas serve` sets `EAGER` (infra/local/functions.py): the graph is read on the loading
    thread, so the gateway's question before a call (is the version that answers it one that
    may vary?) is an attribute read, never a graph walk on the event loop (review_rev7 4)."""
    from functions.runtime.model import LoadedModel

    path = onnx_factory.looping(tmp_path / "looping.onnx")
    monkeypatch.setattr(input_cost, "EAGER", True)
    reads = mocker.spy(input_cost, "varies_with_input")
    loaded = LoadedModel(onnx_factory.manifest_for(path, "looping", "1"), path)
    assert reads.call_count == 1
    assert loaded.cost.varies and reads.call_count == 1
