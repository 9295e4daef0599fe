"""Which weight a load holds twice, read from the graph's structure (no weight read): the
largest mapped one a node takes as its second input or later, which onnxruntime reads from its
mapping while it writes the packed copy. The memory-fit check counted weights on disk at 1.1x;
a model of one 150 MB matrix peaked at 2.0x (docs/large_models.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.runtime import mapped_weights, packed_weights
from functions.runtime.mapped_weights import weight_layout

KIB = 1024


def weight(rows: int, cols: int, name: str) -> TensorProto:
    return numpy_helper.from_array(np.ones((rows, cols), np.float32), name)


def model(subgraph: bool = False, constant: bool = False) -> onnx.ModelProto:
    """tokens -> Gather over a 2 MiB table (its first input: not packed) -> MatMul by a 1 MiB W
    -> Add a bias; `subgraph`: an If whose then branch multiplies by a 1.5 MiB weight of its
    own; `constant`: a 3 MiB Constant-node weight multiplied last (copied from a single file,
    never mapped)."""
    nodes = [
        helper.make_node("Gather", ["table", "tokens"], ["e"]),
        helper.make_node("MatMul", ["e", "W"], ["h"]),
        helper.make_node("Add", ["h", "b"], ["hb"]),
        helper.make_node("Identity", ["hb"], ["y0"]),
    ]
    inits = [weight(8192, 64, "table"), weight(64, 4096, "W"), weight(1, 4096, "b")]
    last = "y0"
    if subgraph:
        out = helper.make_tensor_value_info("t", TensorProto.FLOAT, None)
        then = helper.make_graph(
            [helper.make_node("MatMul", ["y0", "Wt"], ["t"])], "then", [], [out], [weight(4096, 96, "Wt")]
        )  # fmt: skip
        other = helper.make_graph(
            [helper.make_node("Identity", ["y0"], ["t"])], "else", [], [out]
        )  # fmt: skip
        inits.append(numpy_helper.from_array(np.array(True), "cond"))
        nodes.append(helper.make_node("If", ["cond"], ["y1"], then_branch=then, else_branch=other))
        last = "y1"
    if constant:
        tensor = weight(4096, 192, "C")
        nodes.append(helper.make_node("Constant", [], ["C"], value=tensor))
        nodes.append(helper.make_node("MatMul", [last, "C"], ["y2"]))
        last = "y2"
    nodes.append(helper.make_node("Identity", [last], ["y"]))
    graph = helper.make_graph(
        nodes,
        "shapes",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    built = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    built.ir_version = 8
    return built


def external(path: Path, built: onnx.ModelProto) -> bytes:
    """`built` saved with every tensor over 1 KB in external data; model.onnx's bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(built, str(path), save_as_external_data=True, location="model.onnx.data")
    return path.read_bytes()


def test_field_numbers_are_onnx_own() -> None:
    fields = {
        "GraphProto": {"node": "GRAPH_NODE", "initializer": "GRAPH_INITIALIZER"},
        "NodeProto": {
            "input": "NODE_INPUT",
            "op_type": "NODE_OP_TYPE",
            "attribute": "NODE_ATTRIBUTE",
        },
        "AttributeProto": {
            "name": "ATTRIBUTE_NAME",
            "i": "ATTRIBUTE_I",
            "g": "ATTRIBUTE_G",
            "graphs": "ATTRIBUTE_GRAPHS",
        },
        "TensorProto": {
            "dims": "TENSOR_DIMS",
            "data_type": "TENSOR_DATA_TYPE",
            "name": "TENSOR_NAME",
            "external_data": "TENSOR_EXTERNAL_DATA",
            "data_location": "TENSOR_DATA_LOCATION",
        },
        "StringStringEntryProto": {"key": "ENTRY_KEY", "value": "ENTRY_VALUE"},
    }
    for message, named in fields.items():
        descriptor = getattr(onnx, message).DESCRIPTOR
        for field, constant in named.items():
            assert descriptor.fields_by_name[field].number == getattr(packed_weights, constant)
    assert TensorProto.EXTERNAL == packed_weights.EXTERNAL
    for kind, size in packed_weights.ITEM_BYTES.items():
        if kind in (TensorProto.UINT4, TensorProto.INT4):  # two a byte, rounded up
            continue
        assert helper.tensor_dtype_to_np_dtype(kind).itemsize == size, kind


def test_the_largest_weight_a_node_packs_is_counted_not_a_gather_table(tmp_path: Path) -> None:
    buf = external(tmp_path / "model.onnx", model())
    assert weight_layout(buf, external=True).packed == 1024 * KIB  # W, not the 2 MiB table


def test_a_subgraph_s_weights_count_too(tmp_path: Path) -> None:
    buf = external(tmp_path / "model.onnx", model(subgraph=True))
    assert weight_layout(buf, external=True).packed == 1536 * KIB  # the If branch's Wt


def test_a_tensor_without_its_length_is_sized_by_its_dimensions(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    external(path, model(subgraph=True))
    bare = onnx.load(str(path), load_external_data=False)
    then = next(n for n in bare.graph.node if n.op_type == "If").attribute[0].g
    for tensor in [*bare.graph.initializer, *then.initializer]:
        kept = [e for e in tensor.external_data if e.key != "length"]
        del tensor.external_data[:]
        tensor.external_data.extend(kept)
    assert weight_layout(bare.SerializeToString(), external=True).packed == 1536 * KIB


def test_in_a_single_file_only_mapped_weights_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 3 MiB Constant-node weight is copied with the file (counted at 2.0x), not mapped;
    so is every weight of a file under 64 MB."""
    whole = model(constant=True).SerializeToString()
    assert weight_layout(whole).packed == 0  # under 64 MB: nothing mapped
    monkeypatch.setattr(mapped_weights, "MIN_FILE_BYTES", 0)  # kilobytes here, not 64 MB
    layout = weight_layout(whole)
    assert layout.packed == 1024 * KIB and layout.nodes > 3072 * KIB


def test_what_packing_a_narrow_matrix_adds_is_counted_in_any_file() -> None:
    """A float MatMul's or Gemm's B is packed in panels of 16 columns: K x N is held as K x N
    rounded up to 16 (a B of 3 columns at 5.3x), in a small file loaded whole too."""
    nodes = [
        helper.make_node("MatMul", ["x", "W3"], ["a"]),  # 1000 x 3 -> 1000 x 16
        helper.make_node("Gemm", ["x", "T17"], ["b"], transB=1),  # B^T of 17 -> 32 columns
        helper.make_node("MatMul", ["x", "W16"], ["c"]),  # a multiple of 16: nothing added
        helper.make_node("Add", ["x", "bias"], ["d"]),  # not a matrix product
    ]
    inits = [weight(1000, 3, "W3"), weight(17, 1000, "T17"), weight(1000, 16, "W16")]
    inits.append(weight(1, 1000, "bias"))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1000])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in "abcd"]
    built = helper.make_model(helper.make_graph(nodes, "narrow", [x], outs, inits))
    layout = weight_layout(built.SerializeToString())
    assert layout.whole.startswith("under") and layout.mapped == 0
    assert layout.padding == 1000 * 13 * 4 + 1000 * 15 * 4
