"""`aiaas compare` of a trained version with the same model published by `aiaas publish`: the
inputs are read alike though only training describes them (found walking docs/registry.md's `aiaas compare
iris 2 3 --data holdout.csv`, which refused the pair as reading "different inputs" and showed
two identical descriptions)."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import pytest

from functions.runtime.cache import ArtifactCache
from functions.runtime.comparison.run import CompareRequest, compare_versions
from functions.runtime.errors import BadRequest, InvalidInput
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.onnx_factory import identity, manifest_for


def published(tmp_path: Path, description: str, shape: list[object]) -> ModelPool:
    """m:1 as `aiaas train` writes it (its input described), m:2 as `aiaas publish` does."""
    registry = Registry(LocalStore(tmp_path / "store"))
    first = identity(tmp_path / "a.onnx", shape=["N", 3])
    trained = manifest_for(first, "m", "1")
    described = dataclasses.replace(trained.inputs[0], description=description)
    registry.publish(dataclasses.replace(trained, inputs=(described,)), first)
    second = identity(tmp_path / "b.onnx", shape=shape)
    registry.publish(manifest_for(second, "m", "2"), second)
    registry.store.put_bytes("batch/m/input/rows.csv", b"x_0,x_1,x_2\n1,2,3\n4,5,6\n")
    return ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"))


def test_an_input_s_description_does_not_make_it_another_input(tmp_path: Path) -> None:
    pool = published(tmp_path, "raw features in this order: a, b, c", ["N", 3])
    report = compare_versions(pool, CompareRequest("m", "1", "2", "batch/m/input/rows.csv"))
    assert report["rows"]["compared"] == 2 and report["max_abs_diff"] == 0


def test_inputs_that_differ_are_still_refused_naming_the_difference(tmp_path: Path) -> None:
    pool = published(tmp_path, "", ["N", 4])
    with pytest.raises(InvalidInput, match=r"input 'x' takes shape \[-1, 3\], 2's \[-1, 4\]"):
        compare_versions(pool, CompareRequest("m", "1", "2", "batch/m/input/rows.csv"))


def test_a_gzip_bomb_of_captured_requests_is_refused_as_batch_refuses_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Captured requests are read by compare's own loop, not batch's formats: a .jsonl.gz whose
    first line is a capture expanded without bound (a few KB to gigabytes of blank lines, read
    to the end by the control plane, in `aiaas serve`'s own process too). Checked after 1 MB
    here (64 MB as shipped) to keep it quick."""
    from functions.runtime.batch import formats

    monkeypatch.setattr(formats, "RATIO_CHECKED_AFTER", 1024 * 1024)
    pool = published(tmp_path, "", ["N", 3])
    first = {"route": "predict", "request": {"instances": [[1.0, 2.0, 3.0]]}, "response": {}}
    bomb = gzip.compress((json.dumps(first) + "\n" * 3_200_000).encode())
    assert len(bomb) * formats.MAX_GZIP_RATIO < 3_200_000
    key = "capture/m/1/2026-12-01/part-0001.jsonl.gz"
    pool.registry.store.put_bytes(key, bomb)
    with pytest.raises(BadRequest, match="refused as a decompression bomb"):
        compare_versions(pool, CompareRequest("m", "1", "2", key))
