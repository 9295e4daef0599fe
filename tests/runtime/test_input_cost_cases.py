"""Graphs whose cost a request's value sets that the walk (functions/runtime/input_cost.py) took
not to vary (review_rev7 2), each a real graph onnxruntime runs: a cheap request, and the
heavy one the same graph can be sent (its time in the review beside each)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.input_cost import graph_varies

X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
ZERO = numpy_helper.from_array(np.array(0, np.float32), "zero")
ONES = helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])


def _real(nodes, inputs, initializers=(), opset=18, functions=(), cheap=None) -> bytes:
    """The model's bytes, once onnxruntime loaded it and ran `cheap` (feeds) on it."""
    graph = helper.make_graph(nodes, "g", inputs, [Y], initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid("local", 1)]
    model = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    model.ir_version = 5 if opset <= 10 else 8
    data = model.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    session.run(None, cheap or {"x": -np.ones((1, 4), np.float32)})
    return data


def _branch(nodes: list[onnx.NodeProto], output: str) -> onnx.GraphProto:
    return helper.make_graph(nodes, output, [], [helper.make_tensor_value_info(output, 1, None)])


ON_VALUES = [  # the If's condition: the request's values (sum(x) > 0)
    helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
    helper.make_node("Greater", ["s", "zero"], ["c"]),
]


def test_an_if_on_the_requests_values_varies() -> None:
    """A: then, a 3000 x 3000 product (740 ms); else, a sum (0.4 ms)."""
    big = numpy_helper.from_array(np.array([3000, 3000], np.int64), "big")
    heavy = _branch(
        [
            helper.make_node("Expand", ["s", "big"], ["z"]),
            helper.make_node("MatMul", ["z", "z"], ["zz"]),
            helper.make_node("ReduceSum", ["zz"], ["t"], keepdims=0),
        ],
        "t",
    )
    cheap = _branch([helper.make_node("Identity", ["s"], ["e"])], "e")
    branches = {"then_branch": heavy, "else_branch": cheap}
    nodes = [*ON_VALUES, helper.make_node("If", ["c"], ["y"], **branches)]
    assert graph_varies(_real(nodes, [X], [big, ZERO]))


def test_resize_10s_scales_are_its_second_input() -> None:
    """B: opset 10's Resize(X, scales); 11 put roi before scales (45 ms at 1500x)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])
    scales = helper.make_tensor_value_info("scales", TensorProto.FLOAT, [4])
    nodes = [
        helper.make_node("Resize", ["x", "scales"], ["r"]),
        helper.make_node("ReduceSum", ["r"], ["y"], keepdims=0),
    ]
    feeds = {"x": np.ones((1, 1, 2, 2), np.float32), "scales": np.ones(4, np.float32)}
    assert graph_varies(_real(nodes, [x, scales], opset=10, cheap=feeds))
    # scales from a constant: every call costs the same
    fixed = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "fixed")
    nodes[0] = helper.make_node("Resize", ["x", "fixed"], ["r"])
    assert not graph_varies(_real(nodes, [x], [fixed], opset=10, cheap={"x": feeds["x"]}))


def test_a_function_calling_a_varying_one_listed_after_it_varies() -> None:
    """C: FA (listed first) calls FB, a Loop of the request's `n` trips (3.1 s at 3e6)."""
    n = helper.make_tensor_value_info("n", TensorProto.INT64, [])
    state = helper.make_tensor_value_info("acc", TensorProto.FLOAT, None)
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cin"], ["cout"]),
            helper.make_node("Add", ["acc", "acc"], ["acc2"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", 7, []),
            helper.make_tensor_value_info("cin", 9, []),
            state,
        ],
        [
            helper.make_tensor_value_info("cout", 9, []),
            helper.make_tensor_value_info("acc2", 1, None),
        ],
    )
    true = helper.make_tensor("t", TensorProto.BOOL, [], [True])
    fb_nodes = [
        helper.make_node("Constant", [], ["t"], value=true),
        helper.make_node("Loop", ["n", "t", "x"], ["y"], body=body),
    ]
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("local", 1)]
    fb = helper.make_function("local", "FB", ["n", "x"], ["y"], fb_nodes, opsets)
    calls_fb = [helper.make_node("FB", ["n", "x"], ["y"], domain="local")]
    fa = helper.make_function("local", "FA", ["n", "x"], ["y"], calls_fb, opsets)
    nodes = [helper.make_node("FA", ["n", "x"], ["y"], domain="local")]
    feeds = {"n": np.array(1), "x": np.ones((1, 4), np.float32)}
    assert graph_varies(_real(nodes, [n, X], functions=[fa, fb], cheap=feeds))
    assert graph_varies(_real(nodes, [n, X], functions=[fb, fa], cheap=feeds))


def _square_of(shape: str) -> list[onnx.NodeProto]:
    """[d, d] of ones, d the first entry of `shape`, multiplied by itself, summed into y."""
    return [
        helper.make_node("Gather", [shape, "zero_i"], ["d0"], axis=0),
        helper.make_node("Concat", ["d0", "d0"], ["dd"], axis=0),
        helper.make_node("ConstantOfShape", ["dd"], ["z"], value=ONES),
        helper.make_node("MatMul", ["z", "z"], ["zz"]),
        helper.make_node("ReduceSum", ["zz"], ["y"], keepdims=0),
    ]


ZERO_I = numpy_helper.from_array(np.array([0], np.int64), "zero_i")


def test_the_shape_of_an_if_output_a_value_picks_varies() -> None:
    """D: Shape(If(...) -> [3000] or [1]) sizes a square (656 ms). Picked by the request's
    values (an If on them), or by a branch that reshapes a value to the request's shape."""
    long = numpy_helper.from_array(np.zeros(3000, np.float32), "long")
    short = numpy_helper.from_array(np.zeros(1, np.float32), "short")
    branches = {
        "then_branch": _branch([helper.make_node("Constant", [], ["tb"], value=long)], "tb"),
        "else_branch": _branch([helper.make_node("Constant", [], ["eb"], value=short)], "eb"),
    }
    picked = [helper.make_node("If", ["c"], ["b"], **branches)]
    shape = [helper.make_node("Shape", ["b"], ["sh"]), *_square_of("sh")]
    assert graph_varies(_real([*ON_VALUES, *picked, *shape], [X], [ZERO, ZERO_I]))
    # The If on the input's rank (a shape); its branches reshape x to the request's `dims`
    dims = helper.make_tensor_value_info("dims", TensorProto.INT64, [2])
    flat = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])
    reshaped = _branch([helper.make_node("Reshape", ["x", "dims"], ["rb"])], "rb")
    on_shape = [
        helper.make_node("Shape", ["x"], ["xs"]),
        helper.make_node("Size", ["xs"], ["rank"]),
        helper.make_node("Greater", ["rank", "zero_s"], ["c"]),
        helper.make_node("If", ["c"], ["b"], then_branch=reshaped, else_branch=reshaped),
        *shape,
    ]
    zero_s = numpy_helper.from_array(np.array(0, np.int64), "zero_s")
    feeds = {"x": np.ones(4, np.float32), "dims": np.array([1, 4])}
    assert graph_varies(_real(on_shape, [flat, dims], [ZERO_I, zero_s], cheap=feeds))


def test_the_shape_of_a_reshape_to_the_requests_shape_varies() -> None:
    """F: the same 20,000 values as [1, 20000] or [20000, 1]: d0 = 1 or 20,000 (796 ms)."""
    flat = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])
    dims = helper.make_tensor_value_info("dims", TensorProto.INT64, [2])
    nodes = [
        helper.make_node("Reshape", ["x", "dims"], ["r"]),
        helper.make_node("Shape", ["r"], ["sh"]),
        *_square_of("sh"),
    ]
    feeds = {"x": np.ones(4, np.float32), "dims": np.array([1, 4])}
    assert graph_varies(_real(nodes, [flat, dims], [ZERO_I], cheap=feeds))
    # The shape of a reshape to a constant shape, or of the input itself: a shape
    fixed = numpy_helper.from_array(np.array([1, -1], np.int64), "fixed")
    nodes[0] = helper.make_node("Reshape", ["x", "fixed"], ["r"])
    assert not graph_varies(_real(nodes, [flat], [ZERO_I, fixed], cheap={"x": feeds["x"]}))
    nodes[1] = helper.make_node("Shape", ["x"], ["sh"])
    assert not graph_varies(_real(nodes, [flat], [ZERO_I, fixed], cheap={"x": feeds["x"]}))


def test_an_affine_grid_of_the_requests_size_varies() -> None:
    """E: AffineGrid(theta, size) -> (N, H, W, 2): 4000 x 4000 took 404 ms."""
    theta = helper.make_tensor_value_info("theta", TensorProto.FLOAT, [1, 2, 3])
    size = helper.make_tensor_value_info("size", TensorProto.INT64, [4])
    nodes = [
        helper.make_node("AffineGrid", ["theta", "size"], ["grid"]),
        helper.make_node("ReduceSum", ["grid"], ["y"], keepdims=0),
    ]
    feeds = {
        "theta": np.array([[[1, 0, 0], [0, 1, 0]]], np.float32),
        "size": np.array([1, 1, 2, 2]),
    }
    assert graph_varies(_real(nodes, [theta, size], opset=20, cheap=feeds))


def _after_a_value_shaped(producer: list[onnx.NodeProto], inits: list[onnx.TensorProto]) -> bytes:
    """`producer` makes "r" from the request's value; a square of r's first dimension is then
    multiplied: 2000 x 2000 (~230 ms) or 1 x 1 by the value sent (review_rev9 3)."""
    side = 2000
    inits = [
        *inits,
        numpy_helper.from_array(np.ones((side, 1), np.float32), "C"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
        numpy_helper.from_array(np.array([0], np.int64), "first"),
    ]
    nodes = [
        helper.make_node("Cast", ["x1"], ["xi"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["xi", "one"], ["ax"]),
        *producer,
        helper.make_node("Shape", ["r"], ["s"]),
        helper.make_node("Gather", ["s", "first"], ["d"]),
        helper.make_node("Concat", ["d", "d"], ["dd"], axis=0),
        helper.make_node("ConstantOfShape", ["dd"], ["big"], value=ONES),
        helper.make_node("MatMul", ["big", "big"], ["y"]),
    ]
    x1 = helper.make_tensor_value_info("x1", TensorProto.FLOAT, [1, 1])
    return _real(nodes, [x1], inits, opset=17, cheap={"x1": np.ones((1, 1), np.float32)})


def test_a_reduction_whose_axes_are_the_requests_varies() -> None:
    """ReduceSum(C [2000, 1], axes=x): axis 1 keeps 2000 rows, axis 0 leaves one."""
    assert graph_varies(
        _after_a_value_shaped([helper.make_node("ReduceSum", ["C", "ax"], ["r"])], [])
    )


def test_a_split_to_sequence_by_the_requests_values_varies() -> None:
    """SplitToSequence(C, split=1 + x * 1999): a first piece of 1 row or of 2000."""
    inits = [
        numpy_helper.from_array(np.array(1999, np.int64), "k"),
        numpy_helper.from_array(np.array(1, np.int64), "one0"),
        numpy_helper.from_array(np.array(0, np.int64), "zero0"),
    ]
    producer = [
        helper.make_node("ReduceSum", ["xi"], ["xs"], keepdims=0),
        helper.make_node("Mul", ["xs", "k"], ["t"]),
        helper.make_node("Add", ["t", "one0"], ["split"]),
        helper.make_node("SplitToSequence", ["C", "split"], ["seq"], axis=0),
        helper.make_node("SequenceAt", ["seq", "zero0"], ["r"]),
    ]
    assert graph_varies(_after_a_value_shaped(producer, inits))


def test_a_reduction_over_constant_axes_does_not_vary() -> None:
    """Exporters write a reduction's axes as a constant (torch's mean over a dimension)."""
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [
        helper.make_node("ReduceMean", ["x", "axes"], ["m"]),
        helper.make_node("Add", ["m", "zero"], ["y"]),
    ]
    assert not graph_varies(_real(nodes, [X], [axes, ZERO]))
