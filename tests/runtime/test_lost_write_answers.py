"""A conditional write that landed but whose answer was lost: the SDK retries it, S3 answers 412
(the object now exists), and the writer took that for another writer. Publish said 'published
concurrently' (or, numbering itself, published the same model twice), capture wrote its lines
again under a new name (3 requests exported as 4 rows), and promote said 'unchanged' of the
move it made. Each now reads what is there: its own bytes are its own write."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.runtime.aliases import Written
from functions.runtime.capture.buffer import CaptureBuffer
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore, ObjectChanged, ObjectExists
from tests import onnx_factory


@pytest.fixture
def lost_answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The next conditional write of each key whose name ends as given lands, then 'fails'
    as the SDK's retry of it would (412)."""
    real, suffixes = LocalStore.put_bytes, []

    def put_bytes(self: LocalStore, key: str, data: bytes, **conditions: Any) -> None:
        real(self, key, data, **conditions)
        for suffix in list(suffixes):
            if key.endswith(suffix) and conditions:
                suffixes.remove(suffix)
                raise (ObjectExists if conditions.get("if_absent") else ObjectChanged)(key)

    monkeypatch.setattr(LocalStore, "put_bytes", put_bytes)
    yield suffixes


def test_publish_is_published_once(tmp_path: Path, lost_answers: list[str]) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    onnx = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    lost_answers.append("versions/1/manifest.json")
    published = registry.publish(onnx_factory.manifest_for(onnx, "m", "1"), onnx)
    assert published.version == "1" and registry.versions("m") == ["1"]


def test_captured_lines_are_written_once(tmp_path: Path, lost_answers: list[str]) -> None:
    store = LocalStore(tmp_path / "store")
    buffer = CaptureBuffer(store)
    lost_answers.append(".jsonl")
    for n in range(3):
        buffer.add(("m", "1", "2026-12-04"), f'{{"n": {n}}}\n'.encode())
    buffer.flush()
    lines = [
        line for key in store.list_keys("capture") for line in store.get_bytes(key).splitlines()
    ]
    assert sorted(lines) == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']  # each once
    assert buffer.counts.written == 3


def test_a_promote_says_it_moved_the_alias(tmp_path: Path, lost_answers: list[str]) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    onnx = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    for version in ("1", "2"):
        registry.publish(onnx_factory.manifest_for(onnx, "m", version), onnx)
    registry.set_alias("m", "production", "1")
    lost_answers.append("aliases/production.json")
    written = Written()
    record = registry.set_alias("m", "production", "2", written=written)
    assert written.written and record["version"] == "2"
    assert [e["version"] for e in record["history"]] == ["1"]
