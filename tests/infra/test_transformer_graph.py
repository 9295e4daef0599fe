"""The graph outline `aiaas publish --tokenizer` reads (nodes and initializer shapes, from the
protobuf fields, no weight read) equals what the onnx package parses, for a model whose weights
are inside the file and for one whose weights are in external data."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from bench.synthetic_transformer import SyntheticShape, write_model
from functions.runtime.errors import BadRequest
from infra.cli.transformer_graph import Node, load_graph, read_embeddings
from tests import hf_transformer


def onnx_outline(path: Path) -> tuple[tuple[Node, ...], dict[str, int]]:
    graph = onnx.load(str(path), load_external_data=False).graph
    nodes = tuple(Node(n.op_type, tuple(n.input), tuple(n.output)) for n in graph.node)
    return nodes, {t.name: int(t.dims[0]) for t in graph.initializer if len(t.dims) == 2}


@pytest.mark.parametrize("external", [False, True])
def test_outline_equals_onnx_parse(tmp_path: Path, external: bool) -> None:
    bert = hf_transformer.transformer(tmp_path / "bert.onnx", rows=70, positions=40)
    if external:
        model = onnx.load(str(bert))
        onnx.save_model(model, str(bert), save_as_external_data=True, location="bert.data")
    outline = load_graph(bert)
    assert (outline.nodes, outline.tables) == onnx_outline(bert)
    found = read_embeddings(outline, "input_ids", "token_type_ids")
    assert (found.vocabulary_rows, found.position_rows) == (70, 40)
    synthetic = tmp_path / "synthetic" / "model.onnx"
    write_model(synthetic, SyntheticShape.of_bytes(2_000_000, width=64), external=external)
    assert (load_graph(synthetic).nodes, load_graph(synthetic).tables) == onnx_outline(synthetic)


def test_packed_dims_are_read(tmp_path: Path) -> None:
    """proto2 writes dims unpacked; a writer may pack them, which protobuf parses the same."""
    table = helper.make_tensor("table", TensorProto.FLOAT, [3, 2], [0.0] * 6)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["out"])],
        "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", "L"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        initializer=[table],
    )
    raw = helper.make_model(graph).SerializeToString()
    unpacked = bytes([0x08, 3, 0x08, 2])  # dims: field 1, varint, twice
    assert raw.count(unpacked) == 1
    path = tmp_path / "packed.onnx"
    path.write_bytes(raw.replace(unpacked, bytes([0x0A, 2, 3, 2])))  # field 1, length 2: 3, 2
    assert onnx.load(str(path)).graph.initializer[0].dims == [3, 2]
    assert load_graph(path).tables == {"table": 3}


def test_not_an_onnx_file_is_a_bad_request(tmp_path: Path) -> None:
    for content in (b"", b"\xff\xff\xff"):
        path = tmp_path / "bad.onnx"
        path.write_bytes(content)
        with pytest.raises(BadRequest, match="is not an ONNX model"):
            load_graph(path)
