"""The memory-fit check: a published model that cannot fit its function is refused, with the
numbers, by `python -m infra.model_fit` and `python -m infra.model_resources --store`."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bench.synthetic_transformer import SyntheticShape, write_model
from functions.runtime.cache import ArtifactCache
from functions.runtime.mapped_weights import MIN_FILE_BYTES, weight_layout
from functions.runtime.pool import ModelPool
from functions.runtime.refs import model_key
from functions.runtime.registry import Registry
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import LocalStore, ObjectStore
from infra.model_fit import BLOCK, RUNTIME_MB, StoredModel, model_fit, stored_layout
from tests import onnx_factory
from tests.runtime.test_subgraph_weights_memory import branchy

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = """\
Metadata:
  Models:
    big-text:
      MemorySize: {memory}
    not-yet:
Resources: {{}}
"""


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """big-text:1 (a ~40 MB external-data model) @production in a directory store."""
    root = tmp_path_factory.mktemp("fit")
    path = root / "export" / "model.onnx"
    write_model(path, SyntheticShape.of_bytes(40_000_000, width=128), external=True)
    registry = Registry(LocalStore(root / "store"))
    registry.publish(onnx_factory.manifest_for(path, "big-text", "1"), path)
    registry.set_alias("big-text", "production", "1")
    return root / "store"


def run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=REPO, timeout=60
    )


def test_fit_counts_where_the_weights_land(published: Path) -> None:
    store = LocalStore(published)
    manifest = Registry(store).manifest("big-text", "1")
    weights_mb = manifest.weight_bytes / 2**20
    packed = stored_layout(store, manifest).packed
    assert packed == 4 * 128 * 512  # its largest MatMul weight, not its 4 MB embedding table
    on_disk = model_fit(manifest, 1024, store)
    assert on_disk.loads_from == "external-disk" and on_disk.fits
    assert on_disk.need_mb == round(RUNTIME_MB + weights_mb * 1.2 + packed / 2**20)
    in_memory = model_fit(manifest, 1024, store, tmp_mb=32)  # /tmp too small: from memory
    assert in_memory.loads_from == "memory"
    assert in_memory.need_mb == round(RUNTIME_MB + weights_mb * 3.1)


D = 1024
LAYER_BYTES = 4 * D * D  # one float32 [1024, 1024] weight


def write_layers(path: Path, initializers: int, constants: int) -> Path:
    """A chain of MatMuls over [1024, 1024] float32 weights: the first `initializers` as
    initializers (raw_data, as onnx's numpy_helper writes them), the rest in Constant nodes (as
    some exporters write weights)."""
    rng = np.random.default_rng(0)
    nodes, tensors = [], []
    for i in range(initializers + constants):
        weight = numpy_helper.from_array(rng.standard_normal((D, D), np.float32) / 32, f"w{i}")
        if i < initializers:
            tensors.append(weight)
        else:
            nodes.append(helper.make_node("Constant", [], [f"w{i}"], value=weight))
        nodes.append(helper.make_node("MatMul", [f"h{i}", f"w{i}"], [f"h{i + 1}"]))
    n = initializers + constants
    graph = helper.make_graph(
        nodes,
        "layers",
        [helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, D])],
        [helper.make_tensor_value_info(f"h{n}", TensorProto.FLOAT, [1, D])],
        tensors,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert path.stat().st_size >= MIN_FILE_BYTES  # big enough for serving to map its weights
    return path


@pytest.fixture(scope="module")
def layered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """72 MB single files: all 18 weights mapped, 9 + 9 in Constant nodes, all 18 in them;
    and `external`, the first's weights in external data."""
    root = tmp_path_factory.mktemp("layers")
    single = write_layers(root / "initializers.onnx", 18, 0)
    external = root / "external" / "model.onnx"
    external.parent.mkdir()
    onnx.save(onnx.load(str(single)), str(external), save_as_external_data=True)
    return {
        "initializers": single,
        "mixed": write_layers(root / "mixed.onnx", 9, 9),
        "constants": write_layers(root / "constants.onnx", 0, 18),
        "external": external,
    }


def need_mb(mapped: int, size: int, packed: int = 0) -> int:
    """RUNTIME_MB + what is mapped x 1.1 + what onnxruntime copies x 2.0 + a 10% arena + the
    largest mapped weight it packs."""
    copies = mapped * 1.1 + (size - mapped) * 2.0 + size * 0.1 + packed
    return round(RUNTIME_MB + copies / 2**20)


# Every kind from a directory store; from S3 (ranged reads of the graph, not the weights) the
# kind that has both: each 72 MB publish to moto is seconds.
@pytest.mark.parametrize(
    ("store", "kind", "mapped_layers", "where"),
    [
        ("local", "initializers", 18, "mapped-single-disk"),
        ("local", "mixed", 9, "mapped-single-disk"),
        ("local", "constants", 0, "single-disk"),
        ("s3", "mixed", 9, "mapped-single-disk"),
    ],
    indirect=["store"],
)
def test_a_big_single_file_counts_only_what_serving_maps(
    store: ObjectStore, layered: dict[str, Path], kind: str, mapped_layers: int, where: str
) -> None:
    path = layered[kind]
    registry = Registry(store)
    registry.publish(onnx_factory.manifest_for(path, kind, "1"), path)
    manifest = registry.manifest(kind, "1")
    stored = StoredModel(store, model_key(kind, "1"), manifest.file.size)
    layout = weight_layout(stored)
    size = path.stat().st_size
    assert layout.mapped == mapped_layers * LAYER_BYTES
    assert layout.nodes >= (18 - mapped_layers) * LAYER_BYTES  # the Constant tensors, copied
    assert stored.reads * BLOCK < 2 * 2**20, "the walk read weights"  # 72 MB of them
    assert stored_layout(store, manifest) == layout
    assert layout.packed == (LAYER_BYTES if mapped_layers else 0)  # a Constant is copied
    fit = model_fit(manifest, 1024, store)
    assert (fit.loads_from, fit.need_mb) == (where, need_mb(layout.mapped, size, layout.packed))


def test_the_refusal_names_the_copied_part(layered: dict[str, Path], tmp_path: Path) -> None:
    """Functions of 280 and 320 MB (252 and 288 MB less 10% headroom): by the file size alone
    (1.1x, as if mapped: ~237 MB) both models would have passed; counted by what is mapped,
    neither fits."""
    registry = Registry(LocalStore(tmp_path / "store"))
    memory = {"mixed": 280, "constants": 320}
    for kind in memory:
        registry.publish(onnx_factory.manifest_for(layered[kind], kind, "1"), layered[kind])
        registry.set_alias(kind, "production", "1")
        assert RUNTIME_MB + layered[kind].stat().st_size * 1.2 / 2**20 < memory[kind] * 0.9
    template = tmp_path / "template.yaml"
    models = "".join(f"    {kind}:\n      MemorySize: {mb}\n" for kind, mb in memory.items())
    template.write_text(f"Metadata:\n  Models:\n{models}Resources: {{}}\n")
    found = run("infra.model_fit", "--store", str(tmp_path / "store"), "--template", str(template))
    assert found.returncode == 1, found.stdout
    mixed, constants = found.stdout.splitlines()
    sizes = {kind: layered[kind].stat().st_size for kind in memory}
    need = need_mb(9 * LAYER_BYTES, sizes["mixed"], LAYER_BYTES)
    assert mixed.startswith(
        f"mixed:1 needs ~{need} MB (72 MB of weights loading from mapped single disk: 36 MB "
        "mapped x 1.1, 36 MB copied by onnxruntime x 2.0 (36 MB in graph nodes (Constant "
        "tensors); export the weights as initializers or in external data to have them mapped) "
        "+ 4 MB (its largest weight, mapped and packed at once) + 150 MB runtime + 10% arena) "
        "but its function has 280 MB"
    )
    assert "raise MemorySize to 320" in mixed
    assert constants.startswith(
        f"constants:1 needs ~{need_mb(0, sizes['constants'])} MB (72 MB of weights x 2.0 loading "
        "from single disk (nothing mapped, no initializer holds its weights as raw_data: 72 MB "
        "in graph nodes (Constant tensors); export the weights as initializers"
    )
    assert "raise MemorySize to 384" in constants


def test_a_model_too_big_for_its_memory_is_refused(published: Path, tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE.format(memory=128))
    found = run("infra.model_fit", "--store", str(published), "--template", str(template))
    assert found.returncode == 1, found.stdout
    assert "not-yet@production: not published yet, not checked" in found.stdout
    assert "big-text:1 needs ~" in found.stdout
    assert "but its function has 128 MB with 10% headroom: raise MemorySize to 256" in found.stdout
    resources = run(
        "infra.model_resources", "--check", "--template", str(template), "--store", str(published)
    )
    assert resources.returncode == 1
    assert "big-text:1 needs ~" in resources.stderr


def test_a_model_that_fits_passes(published: Path, tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE.format(memory=1024))
    found = run("infra.model_fit", "--store", str(published), "--template", str(template))
    assert found.returncode == 0, found.stdout
    assert "big-text:1: fits (" in found.stdout and "of 1024 MB)" in found.stdout


def test_a_published_model_without_its_alias_is_not_called_unpublished(tmp_path: Path) -> None:
    # Published, never promoted: "not published yet" sent the user to publish it again.
    path = onnx_factory.linear_classifier(tmp_path / "model.onnx", features=4, classes=2)
    Registry(LocalStore(tmp_path / "store")).publish(
        onnx_factory.manifest_for(path, "unaliased", "1"), path
    )
    template = tmp_path / "template.yaml"
    template.write_text("Metadata:\n  Models:\n    unaliased:\nResources: {}\n")
    found = run("infra.model_fit", "--store", str(tmp_path / "store"), "--template", str(template))
    assert (found.returncode, found.stdout) == (
        0,
        "unaliased@production: alias 'production' of model 'unaliased' not found; point it at "
        "a version with `aiaas promote unaliased VERSION --alias production`, not checked\n",
    )


def test_the_refusal_offers_only_what_could_make_it_fit(published: Path) -> None:
    """A 128 MB function cannot hold the runtime: publishing smaller cannot help, and an
    external-data model was told to use external data."""
    manifest = Registry(LocalStore(published)).manifest("big-text", "1")
    tiny = model_fit(manifest, 128, LocalStore(published)).problem()
    assert tiny is not None and "publish it smaller" not in tiny, tiny
    assert tiny.endswith(f"raise MemorySize to 256 (the runtime alone needs {RUNTIME_MB} MB)")
    small = model_fit(manifest, 192, LocalStore(published)).problem()
    assert small is not None and small.endswith(", or publish it smaller (--quantize int8)"), small


def test_mapped_weights_are_not_told_to_be_mapped(layered: dict[str, Path], tmp_path: Path) -> None:
    """A single file whose weights serving maps all, refused: it was told to export them as
    initializers or external data (they are, and external data needs as much) and to publish
    it as external data; only what changes the figure is offered."""
    registry = Registry(LocalStore(tmp_path / "store"))
    for kind in ("initializers", "external"):
        registry.publish(onnx_factory.manifest_for(layered[kind], kind, "1"), layered[kind])
    single, external = (model_fit(registry.manifest(k, "1"), 256, registry.store) for k in ("initializers", "external"))  # fmt: skip
    assert single.loads_from == "mapped-single-disk" and single.need_mb == external.need_mb
    refusal = single.problem()
    assert refusal is not None
    assert refusal == (
        f"initializers:1 needs ~{single.need_mb} MB (72 MB of weights loading from mapped "
        "single disk: 72 MB mapped x 1.1, 0 MB copied by onnxruntime x 2.0 (the graph's "
        "structure) + 4 MB (its largest weight, mapped and packed at once) + 150 MB runtime + "
        "10% arena) but its function has 256 MB with 10% headroom: raise MemorySize to 320, or "
        "publish it smaller (--quantize int8)"
    )


@pytest.mark.parametrize("kind", ["initializers", "external"])
def test_serving_counts_a_load_as_the_check_does(
    layered: dict[str, Path], kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A 256 MB function, too small for either: the pool's warning names the check's figure.
    It counted the single file's weights at 2.0x (~151 MB beside the runtime, where the check
    said ~86): at 320 MB the check passed it and `aiaas serve` warned it may run out."""
    registry = Registry(LocalStore(tmp_path / "store"))
    registry.publish(onnx_factory.manifest_for(layered[kind], kind, "1"), layered[kind])
    manifest = registry.manifest(kind, "1")
    fit = model_fit(manifest, 256, registry.store)
    settings = RuntimeSettings.from_env({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256"})
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"), settings=settings)
    with caplog.at_level(logging.WARNING, "aiaas"):
        caplog.clear()  # only this block's lines (the aiaas logger may be at INFO already)
        pool.load(manifest)
    assert [r.getMessage() for r in caplog.records] == [
        f"loading {kind}:1 needs ~{fit.need_mb - RUNTIME_MB} MB beside the ~0 MB an alias's "
        "versions hold, 80 MB usable of the function's memory: it may run out (raise MemorySize)"
    ]


def test_a_version_that_loads_neither_from_tmp_nor_from_memory_is_refused(tmp_path: Path) -> None:
    """If branches keeping weights in external data load from a file only (model.py refuses
    them from memory): where the files cannot land on /tmp (here a /tmp of 0 MB; on Lambda a
    450 MB version) the check said it fits from memory, and every cold start answered 503."""
    path = branchy(tmp_path / "export" / "model.onnx")
    registry = Registry(LocalStore(tmp_path / "store"))
    registry.publish(onnx_factory.manifest_for(path, "ifext", "1"), path)
    manifest = registry.manifest("ifext", "1")
    assert model_fit(manifest, 1024, registry.store).fits  # on /tmp: served from disk
    fit = model_fit(manifest, 1024, registry.store, tmp_mb=0)
    assert (fit.loads_from, fit.fits) == ("memory", False)
    assert fit.problem() == (
        "ifext:1 cannot load in its function: its files (1 MB, and 64 MB kept free) do not fit "
        "a 0 MB /tmp, and from memory onnxruntime cannot load it (a subgraph keeps weights in "
        "external data file 'model.onnx.data', which onnxruntime reads from a file): keep the "
        "subgraphs' weights inside model.onnx"
    )


class ReadCounting(LocalStore):
    """The directory store, counting the ranged reads a walk makes (a GET each on S3)."""

    ranged = 0

    @contextmanager
    def open_read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[IO[bytes]]:
        self.ranged += 1
        with super().open_read(key, start, end) as reader:
            yield reader


def test_a_small_model_of_many_weights_is_read_in_one_piece(tmp_path: Path) -> None:
    """A file under MIN_FILE_BYTES is walked whole for its packed copies' padding: block by
    block, a 47 MB model of 32 KB weights took 752 ranged reads (none before the padding was
    counted), each a GET on S3; read in one piece, one (review_rev4 1)."""
    weights = [numpy_helper.from_array(np.full(8192, i, np.float32), f"w{i}") for i in range(200)]
    nodes = [
        helper.make_node("Add", ["x" if i == 0 else f"y{i - 1}", f"w{i}"], [f"y{i}"])
        for i in range(200)
    ]
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [8192]) for n in ("x", "y199")]
    graph = helper.make_graph(nodes, "adds", io[:1], io[1:], weights)
    path = tmp_path / "adds.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert 6 * 2**20 < path.stat().st_size < MIN_FILE_BYTES
    store = ReadCounting(tmp_path / "store")
    registry = Registry(store)
    registry.publish(onnx_factory.manifest_for(path, "adds", "1"), path)
    manifest = registry.manifest("adds", "1")
    store.ranged = 0
    fit = model_fit(manifest, 1024, store)
    assert fit.fits and fit.padding_mb == 0
    assert store.ranged == 1
