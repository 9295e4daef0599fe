"""A model download where no thread can be started (review_revfn 2): the deadline's watcher of
a read (download_deadline.py's Timer, which shuts down a trickle at the deadline) is a thread
of its own, and at a process's thread or memory limit (`can't start new thread`) its
RuntimeError failed the whole load, a 500, for a model of one part that needed no thread at
all before. Now the read goes on unwatched (the deadline still checked between chunks), said
once. A real ONNX model on moto's S3 server, through the model cache.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from functions.runtime.cache import ArtifactCache
from functions.runtime.download_deadline import SETTING, configured
from functions.runtime.manifest import MODEL_FILE
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from tests import onnx_factory


def test_a_model_of_one_part_downloads_where_no_thread_can_be_started(
    s3_store: S3Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    manifest = Registry(s3_store).publish(onnx_factory.manifest_for(path, "m", "1"), path)
    cache = ArtifactCache(s3_store, tmp_path / "cache")
    tried: list[str] = []

    def refused(thread: threading.Thread) -> None:  # every start, as at the thread limit
        tried.append(thread.name)
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refused)
    source = cache.fetch(manifest)
    assert Path(source).read_bytes() == path.read_bytes()
    assert tried  # the watcher was asked for, and refused
    said = [r.getMessage() for r in caplog.records if "no thread to watch a read" in r.getMessage()]
    assert len(said) == 1, said


def test_a_deadline_past_the_longest_wait_a_thread_takes_watches_without_a_traceback(
    s3_store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AIAAS_DOWNLOAD_MAX_SECONDS=1e10 (ten billion seconds: "never", short of 0) put the
    watcher's Timer past threading.TIMEOUT_MAX: each part's watcher thread died at its start
    with an OverflowError traceback on stderr, text lines among serve's JSON ones (review_revfn
    4). A wait that long is waited as the longest one a thread takes."""
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    manifest = Registry(s3_store).publish(onnx_factory.manifest_for(path, "m", "1"), path)
    monkeypatch.setenv(SETTING, "1e10")
    died: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: died.append(args.exc_value))
    deadline = configured(manifest.file.size)
    assert deadline is not None and deadline.seconds == 1e10
    key = f"models/m/versions/1/{MODEL_FILE}"
    with s3_store.open_read(key) as body, deadline.watching(body):
        time.sleep(0.3)  # the watcher's thread runs meanwhile
        assert body.read() == path.read_bytes()
    assert died == []
