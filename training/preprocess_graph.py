"""The table's preprocessing as ONNX nodes, joined in front of the torch-exported network.

So the served file takes raw columns and does what training did (`training.table_prep`):

- gaps: `Where(IsNaN(x), median, x)`; a null in simple JSON, a NaN in OIP or an empty cell in
  a batch CSV reaches the graph as NaN and is filled with the training split's median;
- text: ai.onnx.ml `OneHotEncoder` over the training split's categories with `zeros=1`, so a
  category never seen in training encodes as all zeros (onnxruntime runs it on the CPU).

A table with a text column gets one input per raw column, in the table's order (strings
`[N, 1]`, numbers float32 `[N, 1]`), the layout skl2onnx gives a DataFrame's ColumnTransformer,
which serving already reads from records, OIP and batch columns. A table of numbers with gaps
keeps the single float input `x` [N, F]. The network's own input becomes an inner edge.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, compose, helper, numpy_helper

from functions.runtime.carried_strip import METADATA_KEY as STRIP_KEY
from training.errors import ExportError
from training.table_prep import TablePrep, graph_names

NETWORK_INPUT = "x"
FEATURES = "aiaas_features"  # the network's input, now computed by the preprocessing nodes
ML_DOMAIN = "ai.onnx.ml"


def join_preprocessing(path: Path, prep: TablePrep) -> None:
    """Rewrite the network at `path` so that it takes the raw columns `prep` describes."""
    # Every name inside the network gets a prefix, so no raw column can share one ("linear").
    model = compose.add_prefix(
        onnx.load(str(path)), "net/", rename_inputs=False, rename_outputs=False
    )
    graph = model.graph
    outputs = [o.name for o in graph.output]
    taken = graph_names(tuple(c.name for c in prep.columns), outputs)  # fit_prep refused them
    if taken:
        raise ExportError(f"a feature column is named like a preprocessing step or output: {taken}")
    network_input = next(i for i in graph.input if i.name == NETWORK_INPUT)
    batch = network_input.type.tensor_type.shape.dim[0]
    batch_dim = batch.dim_param or "N"
    for node in graph.node:
        _rename_input(node, NETWORK_INPUT, FEATURES)
    nodes, inputs, initializers = (
        _per_column(prep, batch_dim) if prep.per_column else _single(prep, batch_dim)
    )
    others = [i for i in graph.input if i.name != NETWORK_INPUT]
    del graph.input[:]
    graph.input.extend([*inputs, *others])
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend([*nodes, *existing])
    graph.initializer.extend(initializers)
    if prep.per_column and not any(o.domain == ML_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(ML_DOMAIN, 3))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _rename_input(node: onnx.NodeProto, old: str, new: str) -> None:
    for i, name in enumerate(node.input):
        if name == old:
            node.input[i] = new
    for attribute in node.attribute:  # a subgraph may read the outer input too
        for sub in [attribute.g, *attribute.graphs] if attribute.type in (5, 10) else []:
            for inner in sub.node:
                _rename_input(inner, old, new)


def _single(
    prep: TablePrep, batch: str
) -> tuple[list[onnx.NodeProto], list[onnx.ValueInfoProto], list[onnx.TensorProto]]:
    medians = np.asarray([c.median for c in prep.columns], dtype=np.float32)
    nodes = [
        helper.make_node("IsNaN", [NETWORK_INPUT], ["aiaas_gaps"], name="aiaas_gaps"),
        helper.make_node(
            "Where", ["aiaas_gaps", "aiaas_medians", NETWORK_INPUT], [FEATURES], name="aiaas_fill"
        ),
    ]
    value = helper.make_tensor_value_info(
        NETWORK_INPUT, TensorProto.FLOAT, [batch, len(prep.columns)]
    )
    return nodes, [value], [numpy_helper.from_array(medians, "aiaas_medians")]


def _per_column(
    prep: TablePrep, batch: str
) -> tuple[list[onnx.NodeProto], list[onnx.ValueInfoProto], list[onnx.TensorProto]]:
    nodes: list[onnx.NodeProto] = []
    inputs: list[onnx.ValueInfoProto] = []
    initializers: list[onnx.TensorProto] = []
    parts = []
    for i, column in enumerate(prep.columns):
        out = f"aiaas_col{i}"
        if column.text:
            inputs.append(
                helper.make_tensor_value_info(column.name, TensorProto.STRING, [batch, 1])
            )
            # zeros=1: a category training never saw is all zeros, not an error.
            onehot = helper.make_node(
                "OneHotEncoder", [column.name], [f"{out}_onehot"], name=f"{out}_onehot",
                domain=ML_DOMAIN, cats_strings=list(column.categories), zeros=1,
            )  # fmt: skip
            nodes.append(onehot)
            shape = np.asarray([-1, len(column.categories)], dtype=np.int64)
            initializers.append(numpy_helper.from_array(shape, f"{out}_shape"))
            nodes.append(
                helper.make_node("Reshape", [f"{out}_onehot", f"{out}_shape"], [out], name=out)
            )
        else:
            inputs.append(helper.make_tensor_value_info(column.name, TensorProto.FLOAT, [batch, 1]))
            median = np.asarray([column.median], dtype=np.float32)
            initializers.append(numpy_helper.from_array(median, f"{out}_median"))
            nodes += [
                helper.make_node("IsNaN", [column.name], [f"{out}_gaps"], name=f"{out}_gaps"),
                helper.make_node(
                    "Where", [f"{out}_gaps", f"{out}_median", column.name], [out], name=out
                ),
            ]
        parts.append(out)
    nodes.append(helper.make_node("Concat", parts, [FEATURES], name="aiaas_concat", axis=1))
    return nodes, inputs, initializers


def mark_stripped(path: Path) -> tuple[str, ...]:
    """Say in the file's metadata which inputs are a text column's (`carried_strip`): training
    read their cells less the blanks around them, and so must whoever serves the file alone
    (`aiaas publish model.int8.onnx`). The names marked; nothing written where there are none."""
    model = onnx.load(str(path), load_external_data=False)
    named = tuple(
        i.name for i in model.graph.input if i.type.tensor_type.elem_type == TensorProto.STRING
    )
    if named:
        kept = [p for p in model.metadata_props if p.key != STRIP_KEY]
        del model.metadata_props[:]
        model.metadata_props.extend(kept)
        model.metadata_props.add(key=STRIP_KEY, value=json.dumps(list(named)))
        onnx.save(model, str(path))
    return named
