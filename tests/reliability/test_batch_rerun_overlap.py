"""Two failed `aiaas batch` re-runs of one name at once (run A scoring, run B started from
another terminal meanwhile, both stopped): each kept what its upload replaced under one shared
name, so B's copy (A's upload) replaced A's (the original), and the original input the earlier
summary describes was lost, A's unscored upload left in its place. Each run now keeps its own
copy, puts it back, and drops it: the store is as the earlier run left it.

The real CLI path (`main`) on the directory store and moto's S3 server; only the scoring is
replaced, by a stop (as Ctrl-C raises it) after run B has run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import infra.cli.batch_commands as batch_commands
from functions.control.jobs import JobBook
from functions.runtime.registry import Registry
from functions.runtime.store import MULTIPART_THRESHOLD, LocalStore, ObjectStore
from infra.cli.main import main
from tests.batch_support import features_csv, publish_classifier

KEY = "batch/iris/input/big.csv"


def published_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> ObjectStore:
    """A directory store or moto's S3 (`where`), the classifier iris:1 published in it."""
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    store: ObjectStore = (
        LocalStore(tmp_path / "store") if where == "local" else request.getfixturevalue("s3_store")
    )
    publish_classifier(store, tmp_path)
    return store


@pytest.mark.parametrize("where", ["local", "s3"])
def test_two_overlapping_failed_reruns_put_the_original_back(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    store = published_store(request, tmp_path, monkeypatch, where)
    files = {}
    for name, rows in (("x0", 3), ("x1", 5), ("x2", 7)):
        files[name] = tmp_path / name / "big.csv"
        files[name].parent.mkdir()
        files[name].write_text(features_csv(np.ones((rows, 4))))
    assert main(["--store", store.uri, "batch", "iris", str(files["x0"])]) == 0
    scored = {key: store.get_bytes(key) for key in store.list_keys("batch")}
    etag = store.head(KEY).etag
    runs: list[str] = []

    def stopped(*args: Any, **kwargs: Any) -> int:
        runs.append("scoring")
        if len(runs) == 1:  # run A scores: run B starts, and is stopped
            assert main(["--store", store.uri, "batch", "iris", str(files["x2"])]) == 130
        raise KeyboardInterrupt

    monkeypatch.setattr(batch_commands, "_run_locally", stopped)
    assert main(["--store", store.uri, "batch", "iris", str(files["x1"])]) == 130

    assert len(runs) == 2
    assert {key: store.get_bytes(key) for key in store.list_keys("batch")} == scored
    job = JobBook(store, Registry(store), None).status("iris", "big.csv")
    assert (job["status"], job["etag"]) == ("succeeded", etag)


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_copy_keeps_the_etag(request: pytest.FixtureRequest, tmp_path: Path, where: str) -> None:
    """What a put-back relies on: a copy has its source's etag, an input uploaded in parts
    (S3's multipart ETag) included. The directory store's copy had a new mtime, so a new
    etag; S3's copy sent other parts than the upload, so another multipart ETag."""
    store: ObjectStore = (
        LocalStore(tmp_path / "store") if where == "local" else request.getfixturevalue("s3_store")
    )
    big = tmp_path / "big.csv"
    big.write_bytes(np.random.default_rng(0).bytes(MULTIPART_THRESHOLD + 1024))
    store.upload_file(big, KEY)
    store.copy(KEY, "batch/iris/work/previous/big.csv", keep_etag=True)
    assert store.head("batch/iris/work/previous/big.csv").etag == store.head(KEY).etag
