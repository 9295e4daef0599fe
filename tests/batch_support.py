"""Helpers for the batch tests: a published classifier, a service on a store, events, outputs."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from functions.batch.events import s3_notification, sqs_event, store_location
from functions.batch.service import BatchService
from functions.runtime.batch import parallel
from functions.runtime.batch import settings as batch_settings
from functions.runtime.batch.layout import parse_input_key
from functions.runtime.batch.run import RunInput, run_object
from functions.runtime.batch.settings import BatchSettings
from functions.runtime.cache import ArtifactCache
from functions.runtime.manifest import ModelManifest
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore, ObjectStore
from tests import onnx_factory

MODEL = "iris"
LABELS = ("setosa", "versi,color", "virginica")  # a comma: CSV cells must be quoted


def publish_classifier(store: ObjectStore, workdir: Path, name: str = MODEL) -> ModelManifest:
    """A 4-feature, 3-class linear classifier published as `name:1`."""
    path = onnx_factory.linear_classifier(workdir / f"{name}.onnx")
    manifest = onnx_factory.manifest_for(path, name, "1", labels=LABELS)
    return Registry(store).publish(manifest, path)


def published_store(workdir: Path) -> LocalStore:
    """A local store under `workdir` with the iris classifier published."""
    store = LocalStore(workdir / "store")
    publish_classifier(store, workdir)
    return store


def pool(store: ObjectStore, workdir: Path) -> ModelPool:
    registry = Registry(store)
    return ModelPool(registry, ArtifactCache(store, workdir / "cache"))


def run_settings(chunk_rows: int | None = None) -> BatchSettings:
    """What an entry point reads: the environment (tests set it), and chunk rows if given."""
    return BatchSettings.from_env().with_chunk_rows(chunk_rows)


def service(store: ObjectStore, workdir: Path, chunk_rows: int | None = None) -> BatchService:
    return BatchService(store, pool(store, workdir), run_settings(chunk_rows))


def run(
    store: ObjectStore,
    workdir: Path,
    key: str,
    chunk_rows: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Score `key` the way the handler does, through run_object."""
    obj = parse_input_key(key)
    assert obj is not None
    bucket = store_location(store)[0]
    run_input = RunInput(obj, bucket, store.head(key))
    settings = run_settings(chunk_rows)
    return run_object(store, pool(store, workdir), run_input, settings, progress)


def notification_body(store: ObjectStore, key: str) -> str:
    """The S3 notification S3 would put on the queue for `key` (URL-encoded key)."""
    bucket, prefix = store_location(store)
    info = store.head(key)
    return json.dumps(s3_notification(bucket, prefix + key, info.etag, info.size))


def sqs_for(store: ObjectStore, *keys: str) -> dict[str, Any]:
    return sqs_event([notification_body(store, key) for key in keys])


def features_csv(x: np.ndarray, ids: bool = True) -> str:
    header = (["id"] if ids else []) + [f"x_{i}" for i in range(x.shape[1])]
    lines = [",".join(header)]
    for index, row in enumerate(x.tolist()):
        lines.append(",".join(([f"r{index}"] if ids else []) + [repr(v) for v in row]))
    return "\n".join(lines) + "\n"


def read_csv(store: ObjectStore, key: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(store.get_bytes(key).decode())))


def read_jsonl(store: ObjectStore, key: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in store.get_bytes(key).decode().splitlines()]


def reference_logits(workdir: Path, x: np.ndarray, name: str = MODEL) -> np.ndarray:
    """The model's outputs from a bare onnxruntime session, to compare against."""
    session = ort.InferenceSession(
        str(workdir / f"{name}.onnx"), providers=["CPUExecutionProvider"]
    )
    return np.asarray(session.run(["logits"], {"x": x.astype(np.float32)})[0])


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits.astype(np.float64) - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def two_batch_workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fixture's body: two worker processes for any text input, in blocks of ~300 bytes
    (block edges fall inside lines, chunks and bad rows), started for the test with its
    environment (a worker keeps the one it started with, as in a Lambda container)."""
    monkeypatch.setenv("AIAAS_BATCH_WORKERS", "2")
    monkeypatch.setattr(batch_settings, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "BLOCK_BYTES", 300)
    yield
    parallel._stop_pool()
    parallel._pool = None


def store_with_classifier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalStore:
    """A directory store holding the classifier, with the test's own artifact cache."""
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    store = LocalStore(tmp_path / "store")
    publish_classifier(store, tmp_path)
    return store


def scored(store: ObjectStore, workdir: Path, model: str, name: str, data: bytes) -> dict[str, Any]:
    """`data` put as batch input `name` of `model`, its SQS message dispatched to the batch
    handler (the final delivery, no failures left), and the run's summary."""
    from functions.batch.handler import dispatch

    key = f"batch/{model}/input/{name}"
    store.put_bytes(key, data)
    assert dispatch(service(store, workdir), sqs_for(store, key)) == {"batchItemFailures": []}
    return json.loads(store.get_bytes(f"batch/{model}/output/{name}.summary.json"))  # type: ignore[no-any-return]
