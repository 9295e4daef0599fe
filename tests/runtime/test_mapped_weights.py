"""Big single-file models load through a graph file whose initializers point at their bytes in
the verified file: served from a real S3 server on loopback, answers bit-identical to loading
the file itself, odd protobufs load the file as before, nothing points outside the file."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.runtime import mapped_weights
from functions.runtime.cache import ArtifactCache
from functions.runtime.introspect import read_signature
from functions.runtime.model import LoadedModel
from functions.runtime.registry import Registry
from tests import onnx_factory
from tests.runtime.test_external_data import predict_event

ROWS = np.random.default_rng(3).standard_normal((5, 16)).astype(np.float32)
RAW = ("weight", "index", "codes")  # the initializers big enough to be mapped


@pytest.fixture(autouse=True)
def every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Map files of any size: the models here are kilobytes, not the 64 MB served so."""
    monkeypatch.setattr(mapped_weights, "MIN_FILE_BYTES", 0)


def initializers() -> list[TensorProto]:
    rng = np.random.default_rng(0)
    typed = helper.make_tensor("bias", TensorProto.FLOAT, [512], rng.standard_normal(512))
    shift = helper.make_tensor("shift", TensorProto.INT32, [1024], rng.integers(-9, 9, 1024))
    return [
        numpy_helper.from_array(rng.standard_normal((16, 512)).astype(np.float32), "weight"),
        numpy_helper.from_array(rng.integers(0, 512, 1024).astype(np.int64), "index"),
        numpy_helper.from_array(rng.integers(-128, 127, 8192).astype(np.int8), "codes"),
        numpy_helper.from_array(np.array([0.5], np.float32), "scale"),  # raw but small: inline
        typed,  # float_data and int32_data: left as they are
        shift,
    ]


def model_proto() -> onnx.ModelProto:
    """Float and int initializers, raw and typed: y = (x @ W + b)[:, index] * scale + shift,
    and a checksum of the int8 codes."""
    nodes = [
        helper.make_node("MatMul", ["x", "weight"], ["h"]),
        helper.make_node("Add", ["h", "bias"], ["hb"]),
        helper.make_node("Gather", ["hb", "index"], ["g"], axis=1),
        helper.make_node("Mul", ["g", "scale"], ["gs"]),
        helper.make_node("Cast", ["shift"], ["shift_f"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["gs", "shift_f"], ["y"]),
        helper.make_node("Cast", ["codes"], ["codes_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["codes_f"], ["total"], keepdims=1),
    ]
    graph = helper.make_graph(
        nodes,
        "mixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1024]),
            helper.make_tensor_value_info("total", TensorProto.FLOAT, [1]),
        ],
        initializer=initializers(),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "built" / "model.onnx"
    path.parent.mkdir()
    onnx.save_model(model_proto(), str(path))
    return path


def answers(path: Path | str) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": ROWS})  # type: ignore[no-any-return]


@pytest.fixture
def graphs_made(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path | None]]:
    """What each `graph_file` call returned (the real one runs)."""
    made: list[Path | None] = []
    real = mapped_weights.graph_file

    def recorded(path: Path) -> Path | None:
        made.append(real(path))
        return made[-1]

    monkeypatch.setattr(mapped_weights, "graph_file", recorded)
    yield made


def test_field_numbers_are_onnx_own() -> None:
    fields = TensorProto.DESCRIPTOR.fields_by_name
    assert onnx.ModelProto.DESCRIPTOR.fields_by_name["graph"].number == mapped_weights.MODEL_GRAPH
    assert (
        onnx.GraphProto.DESCRIPTOR.fields_by_name["initializer"].number
        == mapped_weights.GRAPH_INITIALIZER
    )
    assert fields["raw_data"].number == mapped_weights.TENSOR_RAW_DATA
    assert fields["segment"].number == mapped_weights.TENSOR_SEGMENT
    assert fields["external_data"].number == mapped_weights.TENSOR_EXTERNAL_DATA
    assert fields["data_location"].number == mapped_weights.TENSOR_DATA_LOCATION
    assert TensorProto.EXTERNAL == mapped_weights.EXTERNAL
    typed = {fields[f"{kind}_data"].number for kind in ("float", "int32", "string", "int64")}
    typed |= {fields[f"{kind}_data"].number for kind in ("double", "uint64")}
    assert typed == mapped_weights.TYPED_DATA
    entry = onnx.StringStringEntryProto.DESCRIPTOR.fields_by_name
    assert (entry["key"].number, entry["value"].number) == (1, 2)


def test_graph_file_points_at_each_big_raw_tensor_inside_the_file(model_file: Path) -> None:
    graph = mapped_weights.graph_file(model_file)
    assert graph is not None and graph.parent == model_file.parent
    try:
        written = onnx.load_model(str(graph), load_external_data=False)
        source, size = model_file.read_bytes(), model_file.stat().st_size
        mapped = 0
        for tensor, original in zip(written.graph.initializer, initializers(), strict=True):
            if tensor.name not in RAW:  # small or typed: byte for byte as they were
                assert tensor == original
                continue
            where = {entry.key: entry.value for entry in tensor.external_data}
            offset, length = int(where["offset"]), int(where["length"])
            assert tensor.data_location == TensorProto.EXTERNAL and not tensor.raw_data
            assert where["location"] == model_file.name  # the verified file, nothing else
            assert offset >= 0 and offset + length <= size
            assert source[offset : offset + length] == original.raw_data
            mapped += length
        assert mapped > 40_000
        assert graph.stat().st_size < size - mapped + 300  # the weights are not in it
        assert [answer.tobytes() for answer in answers(graph)] == [
            answer.tobytes() for answer in answers(model_file)
        ]
    finally:
        graph.unlink()


def test_served_from_the_store_through_the_cache_bit_identical(
    registry: Registry, model_file: Path, cache_dir: Path, graphs_made: list[Path | None]
) -> None:
    manifest = onnx_factory.manifest_for(model_file, "mixed", "1")
    registry.publish(manifest, model_file)
    path = ArtifactCache(registry.store, cache_dir).fetch(manifest)
    loaded = LoadedModel(manifest, path)
    got = loaded.predict({"x": ROWS})
    expected = answers(model_file)
    assert got["y"].tobytes() == expected[0].tobytes()
    assert got["total"].tobytes() == expected[1].tobytes()
    # Publishing read the model's signature through one too; serving made the last one.
    assert [graph is not None for graph in graphs_made] == [True, True]
    assert graphs_made[-1] is not None and graphs_made[-1].parent == cache_dir
    # onnxruntime maps the weights from the verified cache file; the graph file is gone.
    assert str(path) in Path("/proc/self/maps").read_text()
    assert sorted(p.name for p in cache_dir.iterdir()) == [path.name]


def test_predict_handler_answers_as_the_file_does(
    s3_store: object, model_file: Path, tmp_path: Path, graphs_made: list[Path | None]
) -> None:
    from functions.runtime.s3store import S3Store
    from infra.local.functions import load_handler

    assert isinstance(s3_store, S3Store)
    Registry(s3_store).publish(onnx_factory.manifest_for(model_file, "mixed", "1"), model_file)
    event = predict_event(ROWS)
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/models/mixed/predict"
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /models/mixed/predict"
    env = {
        "AIAAS_MODEL": "mixed",
        "AIAAS_MODEL_SELECTOR": ":1",
        "AIAAS_STORE": s3_store.uri,
        "AIAAS_CACHE_DIR": str(tmp_path / "cache"),
    }
    response = load_handler("functions.predict.handler.handler", env)(event, None)
    assert response["statusCode"] == 200, response["body"]
    body = json.loads(response["body"])
    expected = answers(model_file)
    assert np.array_equal(np.asarray(body["outputs"]["y"], np.float32), expected[0])
    assert body["outputs"]["total"] == expected[1].tolist()
    assert graphs_made[-1] is not None and graphs_made[-1].parent == tmp_path / "cache"


def test_small_files_load_as_they_are(model_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mapped_weights, "MIN_FILE_BYTES", model_file.stat().st_size + 1)
    with mapped_weights.loadable(model_file) as path:
        assert path == model_file
    assert sorted(model_file.parent.iterdir()) == [model_file]


def test_a_truncated_file_loads_as_it_is_with_a_log_line(
    model_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model_file.write_bytes(model_file.read_bytes()[:-3000])  # a weight cut off mid-way
    with (
        caplog.at_level(logging.WARNING, "aiaas.runtime"),
        mapped_weights.loadable(model_file) as path,
    ):
        assert path == model_file
    assert "loading the whole file (its weights cannot be mapped: a field runs past" in caplog.text
    assert sorted(model_file.parent.iterdir()) == [model_file]


@pytest.mark.parametrize(
    "damage",
    [b"\xff" * 12, b"\x0f\x00"],  # a varint that never ends; wire type 7, which does not exist
)
def test_garbage_is_not_mapped(model_file: Path, damage: bytes) -> None:
    model_file.write_bytes(damage + model_file.read_bytes())
    assert mapped_weights.graph_file(model_file) is None
    assert sorted(model_file.parent.iterdir()) == [model_file]


def test_a_raw_data_length_past_the_file_end_is_refused(model_file: Path) -> None:
    """A length that points outside the file (here: outside its message) never becomes an
    external data range."""
    data = bytearray(model_file.read_bytes())
    raw = numpy_helper.from_array(np.zeros(4096, np.uint8), "x").SerializeToString()
    header = raw[: raw.index(b"\x00" * 16)]  # ... raw_data's key and its length, 4096
    assert header.endswith(b"\x80\x20")
    data += b"\x3a" + bytes([len(header) + 1]) + header[:-2] + b"\x80\x40"
    model_file.write_bytes(bytes(data))  # a trailing field claiming 8 KiB it does not have
    assert mapped_weights.graph_file(model_file) is None


def test_models_already_keeping_external_data_are_left_alone(
    model_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = onnx.load_model(str(model_file))
    onnx.save_model(
        model, str(model_file), save_as_external_data=True, location="w.bin", size_threshold=0
    )
    with caplog.at_level(logging.WARNING, "aiaas.runtime"):
        assert mapped_weights.graph_file(model_file) is None
    assert caplog.text == ""  # the usual form of a big model: nothing to warn about
    assert not list(model_file.parent.glob(".graph-*"))


def test_publishing_reads_the_signature_through_the_graph_file(
    model_file: Path, graphs_made: list[Path | None]
) -> None:
    manifest = onnx_factory.manifest_for(model_file, "mixed", "1")
    assert [spec.name for spec in manifest.inputs] == ["x"]
    assert [(spec.name, spec.shape) for spec in manifest.outputs] == [
        ("y", (-1, 1024)),
        ("total", (1,)),
    ]
    assert manifest.file.opset == 17 and manifest.file.size == model_file.stat().st_size
    assert len(graphs_made) == 1 and graphs_made[0] is not None
    assert sorted(model_file.parent.iterdir()) == [model_file]


def test_a_class_list_the_graph_file_mapped_is_still_read_at_publish(
    tmp_path: Path, graphs_made: list[Path | None]
) -> None:
    """A label picked from 600 int64 classes (4.8 KB: mapped like a weight) is still found."""
    classes = np.arange(1000, 1600, dtype=np.int64)
    graph = helper.make_graph(
        [
            helper.make_node("ArgMax", ["scores"], ["best"], axis=1, keepdims=0),
            helper.make_node("Gather", ["classes", "best"], ["label"]),
        ],
        "picker",
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 600])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"])],
        initializer=[numpy_helper.from_array(classes, "classes")],
    )
    path = tmp_path / "picker.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    signature = read_signature(path)
    assert signature.classes.labels == tuple(str(c) for c in classes)
    assert signature.classes.label_outputs == {"label"}
    assert len(graphs_made) == 1 and graphs_made[0] is not None


def test_a_varint_running_past_its_message_is_not_mapped(model_file: Path) -> None:
    """A graph whose last byte starts a varint field: onnxruntime refuses the file, so no graph
    file may read that varint from the next field and serve what the file does not say."""
    from functions.runtime.protowire import LEN, encode_key, encode_varint, fields

    data = model_file.read_bytes()
    damaged = b""
    for item in fields(data, 0, len(data)):
        if item.number == mapped_weights.MODEL_GRAPH:
            graph = data[item.start : item.end] + b"\x08"  # field 1's key; its value is outside
            damaged += encode_key(item.number, LEN) + encode_varint(len(graph)) + graph
        else:
            damaged += data[item.begin : item.end]
    model_file.write_bytes(damaged)
    with pytest.raises(Exception, match="INVALID_PROTOBUF"):
        answers(model_file)
    assert mapped_weights.graph_file(model_file) is None
    assert sorted(model_file.parent.iterdir()) == [model_file]


def test_an_interrupt_while_writing_leaves_no_graph_file(
    model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (or a worker's shutdown) during a load must not leave a graph file in the cache."""
    real = mapped_weights.write_graph

    def interrupted(source: Path, out: BinaryIO) -> int:
        real(source, out)
        raise KeyboardInterrupt

    monkeypatch.setattr(mapped_weights, "write_graph", interrupted)
    with pytest.raises(KeyboardInterrupt):
        mapped_weights.graph_file(model_file)
    assert sorted(model_file.parent.iterdir()) == [model_file]


def test_the_layout_counts_what_the_graph_file_maps(model_file: Path) -> None:
    """infra.model_fit counts memory by weight_layout: it must map exactly what graph_file does,
    and put every other initializer byte in the part onnxruntime copies."""
    layout = mapped_weights.weight_layout(model_file.read_bytes())
    graph = mapped_weights.graph_file(model_file)
    assert graph is not None
    try:
        written = onnx.load_model(str(graph), load_external_data=False)
    finally:
        graph.unlink()
    lengths = [
        int({e.key: e.value for e in tensor.external_data}["length"])
        for tensor in written.graph.initializer
        if tensor.data_location == TensorProto.EXTERNAL
    ]
    assert len(lengths) == len(RAW) and layout.mapped == sum(lengths)
    by_name = {tensor.name: tensor for tensor in initializers()}
    field = 3  # an initializer's field key and length, beside its message
    assert layout.typed == sum(by_name[n].ByteSize() + field for n in ("bias", "shift"))
    assert layout.small == by_name["scale"].ByteSize() + 2
    assert layout.nodes == sum(node.ByteSize() + 2 for node in model_proto().graph.node)
    assert (layout.size, layout.whole) == (model_file.stat().st_size, "")
    assert layout.copied == layout.size - layout.mapped
