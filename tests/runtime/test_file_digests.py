"""A big model read for its signature is sent without being hashed again (file_digests.py):
its parts carry the CRC32s taken in the same read as the manifest's sha256, and the stored
object is the file; a file changed after that read is hashed as it goes and refused when it no
longer matches its manifest. On S3 over moto's server."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from functions.runtime import file_digests
from functions.runtime.errors import BadRequest
from functions.runtime.introspect import read_signature
from functions.runtime.refs import model_key
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from tests import onnx_factory

PART_MB = 5


@pytest.fixture
def big(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An 18 MB single-file model (over the 16 MB multipart threshold), parts of 5 MB."""
    monkeypatch.setenv("AIAAS_TRANSFER_PART_MB", str(PART_MB))
    return onnx_factory.big_add(tmp_path / "big.onnx", 4_500_000)


def sent_parts(store: S3Store) -> list[dict[str, Any]]:
    """Every UploadPart's parameters, as the client sends them."""
    parts: list[dict[str, Any]] = []
    store.client.meta.events.register(
        "provide-client-params.s3.UploadPart", lambda params, **_: parts.append(dict(params))
    )
    return parts


def test_the_signature_read_leaves_the_crc32s_its_upload_sends(
    s3_store: S3Store, big: Path
) -> None:
    manifest = onnx_factory.manifest_for(big, "big", "1")
    known = file_digests.known(big, PART_MB * 1024 * 1024)
    assert known is not None and known.sha256 == manifest.file.sha256
    assert len(known.crc32) == 4  # 18 MB in 5 MB parts

    parts = sent_parts(s3_store)
    Registry(s3_store).publish(manifest, big)
    assert [p["ChecksumCRC32"] for p in sorted(parts, key=lambda p: p["PartNumber"])] == list(
        known.crc32
    )
    stored = s3_store.get_bytes(model_key("big", "1"))
    assert hashlib.sha256(stored).hexdigest() == manifest.file.sha256 == sha256(big)


def test_a_file_changed_after_its_signature_is_hashed_again_and_refused(
    s3_store: S3Store, big: Path
) -> None:
    manifest = onnx_factory.manifest_for(big, "big", "1")
    data = bytearray(big.read_bytes())
    data[-10] ^= 0xFF  # the same size, other bytes (and a new modification time)
    big.write_bytes(bytes(data))
    os.utime(big, ns=(big.stat().st_atime_ns, big.stat().st_mtime_ns + 1_000_000))
    assert file_digests.known(big, PART_MB * 1024 * 1024) is None

    parts = sent_parts(s3_store)
    with pytest.raises(BadRequest, match="does not match the sha256 in the manifest of big:1"):
        Registry(s3_store).publish(manifest, big)
    assert parts and all("ChecksumCRC32" not in p for p in parts)  # botocore's own, computed
    assert s3_store.client.list_objects_v2(Bucket=s3_store.bucket).get("KeyCount") == 0


def test_a_small_file_is_only_hashed(tmp_path: Path) -> None:
    small = onnx_factory.linear_classifier(tmp_path / "small.onnx")
    read_signature(small)
    assert file_digests.known(small, 16 * 1024 * 1024) is None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def external(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small model whose 18 MB of weights live in `w.bin` beside it, parts of 5 MB."""
    monkeypatch.setenv("AIAAS_TRANSFER_PART_MB", str(PART_MB))
    width = 4_500_000
    model = onnx_factory.external_add(tmp_path / "ext" / "model.onnx", "w.bin", width)
    (model.parent / "w.bin").write_bytes(os.urandom(width * 4))
    return model


def test_the_signature_read_takes_the_external_data_files_crc32s_their_upload_sends(
    s3_store: S3Store, external: Path
) -> None:
    data = external.parent / "w.bin"
    manifest = onnx_factory.manifest_for(external, "ext", "1")
    known = file_digests.known(data, PART_MB * 1024 * 1024)
    assert known is not None and known.sha256 == sha256(data) and len(known.crc32) == 4
    assert file_digests.known_sha256(external) is None  # the model itself goes up in one put

    parts = sent_parts(s3_store)
    stored = Registry(s3_store).publish(manifest, external)
    assert [p["ChecksumCRC32"] for p in sorted(parts, key=lambda p: p["PartNumber"])] == list(
        known.crc32
    )
    assert {f.path: f.sha256 for f in stored.files}["w.bin"] == known.sha256
    key = f"{model_key('ext', '1').rsplit('/', 1)[0]}/w.bin"
    assert hashlib.sha256(s3_store.get_bytes(key)).hexdigest() == sha256(data)


def test_a_refused_model_leaves_no_digest_running(
    big: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digests run beside onnxruntime's load; a model it refuses stops them at the next
    part (each part's hash made to take 0.5 s: the refusal comes first)."""
    import onnx

    real_sha256 = hashlib.sha256

    class SlowSha256:
        def __init__(self) -> None:
            self.inner = real_sha256()

        def update(self, data: bytes) -> None:
            time.sleep(0.5)
            self.inner.update(data)

        def hexdigest(self) -> str:
            return self.inner.hexdigest()

    model = onnx.load(big)
    model.graph.node[0].op_type = "NoSuchOp"
    bad = big.with_name("bad.onnx")
    bad.write_bytes(model.SerializeToString())  # 18 MB: 4 parts
    monkeypatch.setattr(hashlib, "sha256", SlowSha256)  # file_digests asks hashlib at each file
    with pytest.raises(BadRequest, match="NoSuchOp"):
        read_signature(bad)
    assert not [t for t in threading.enumerate() if t.name == "aiaas-digests"]
    assert file_digests.known_sha256(bad) is None  # given up, nothing remembered


def test_data_files_publishing_refuses_are_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "secret.bin"
    outside.write_bytes(os.urandom(17 * 1024 * 1024))
    model = onnx_factory.external_add(tmp_path / "m" / "model.onnx", "../secret.bin", 16)
    with pytest.raises(BadRequest):
        read_signature(model)
    assert file_digests.known_sha256(outside) is None


def test_every_big_data_file_of_a_model_is_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model may keep each weight in a file of its own (all_tensors_to_one_file=False): each
    big one is sent with the CRC32s the signature read took, not only the last few."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from functions.runtime import introspect

    monkeypatch.setattr(introspect, "MULTIPART_THRESHOLD", 1 << 20)  # 1.2 MB files count as big
    width, count = 300_000, 12
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.random(width, dtype=np.float32), f"w{i}") for i in range(count)
    ]
    nodes = [
        helper.make_node("Add", ["x" if i == 0 else f"y{i - 1}", f"w{i}"], [f"y{i}"])
        for i in range(count)
    ]
    graph = helper.make_graph(
        nodes,
        "many_files",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info(f"y{count - 1}", TensorProto.FLOAT, [None, width])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "many" / "model.onnx"
    path.parent.mkdir()
    onnx.save_model(
        model, str(path), save_as_external_data=True, all_tensors_to_one_file=False,
        size_threshold=0,
    )  # fmt: skip
    read_signature(path)
    part = 16 * 1024 * 1024  # the default part size
    assert all(file_digests.known(path.parent / f"w{i}", part) for i in range(count))
