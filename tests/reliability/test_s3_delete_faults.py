"""Deletes S3 fails or half answers, through the CLI, on moto behind the fault proxy
(`s3faults.py`): a prune whose DeleteObjects reports every key failed, and a conditional DELETE
done by S3 whose answer was lost (then retried: 404).

A prune S3 would not let delete anything recorded its versions as deleted ("pruned: deleted 1,
2, 3", all of them intact and served) and kept every rerun off them for 5 minutes ("another
prune is deleting it"); the per-key errors were not retried. A failed local batch run said its
gone input was "left in the store: ... changed since it was read", added an SQS line though a
local run has no queue, and printed nothing on stdout under --json.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from infra.cli.main import main
from tests.batch_support import features_csv, publish_classifier
from tests.publishing import publish_linear
from tests.reliability.s3faults import proxied
from tests.s3server import MotoServer


@pytest.fixture
def store(s3_bucket: str, tmp_path: Path) -> S3Store:
    """m:1..4 (straight to moto, before the proxy), nothing aliased: a prune --keep 1 deletes
    1, 2 and 3."""
    store = S3Store(s3_bucket, "registry")
    for version in ("1", "2", "3", "4"):
        publish_linear(Registry(store), tmp_path, "m", version)
    return store


def test_a_prune_s3_refuses_records_nothing_and_runs_again_at_once(
    store: S3Store,
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with proxied(moto_server.port, monkeypatch) as proxy:
        proxy.delete_errors = -1  # every DeleteObjects: InternalError for every key
        assert main(["--store", store.uri, "prune", "m", "--keep", "1", "--yes"]) == 1
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1, err
        assert err[0].startswith(
            "aiaas prune: error: the prune of 'm' deleted nothing; version(s) 1, 2, 3 are intact "
            "(run it again): S3 did not delete 3 of 3 objects, e.g. "
            "'registry/models/m/versions/1/manifest.json': InternalError"
        )
        deletes = [path for method, path in proxy.seen if method == "POST" and "?delete" in path]
        assert len(deletes) == 3  # the failed keys sent again, as often as a request is tried
        proxy.clear()
        assert main(["--store", store.uri, "versions", "m"]) == 0
        shown = capsys.readouterr().out
        assert "pruned" not in shown and "deleted" not in shown  # no run that deleted nothing
        assert Registry(store).versions("m") == ["1", "2", "3", "4"]
        # At once: no claim left keeping the versions for "another prune" that is not running
        assert main(["--store", store.uri, "prune", "m", "--keep", "1", "--yes"]) == 0
        assert capsys.readouterr().out.startswith("m: deleted 3 version(s)")
    assert Registry(store).versions("m") == ["4"]


def test_keys_s3_failed_once_are_deleted_on_the_resend(
    store: S3Store,
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with proxied(moto_server.port, monkeypatch) as proxy:
        proxy.delete_errors = 1  # the first DeleteObjects only
        assert main(["--store", store.uri, "prune", "m", "--keep", "1", "--yes"]) == 0
        assert capsys.readouterr().out.startswith("m: deleted 3 version(s)")
        assert proxy.delete_errors == 0
    assert Registry(store).versions("m") == ["4"]
    assert not list(store.list_keys("models/m/versions/1"))


def test_a_failed_local_batch_says_one_error_line_one_json_document_and_no_false_warning(
    s3_bucket: str,
    moto_server: MotoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    store = S3Store(s3_bucket, "registry")
    publish_classifier(store, tmp_path)
    data = tmp_path / "rows.csv"
    data.write_text(features_csv(np.ones((6, 4))))
    with proxied(moto_server.port, monkeypatch) as proxy:
        proxy.cut_put_key = "registry/batch/iris/output/rows.csv.errors.jsonl"  # run fails
        proxy.lose_delete = "/registry/batch/iris/input/rows.csv"  # its input removed, unsaid
        caplog.set_level(logging.DEBUG, logger="aiaas")
        argv = ["--store", store.uri, "batch", "iris", str(data), "--json", "--no-progress"]
        assert main(argv) == 1
        shown = capsys.readouterr()
    assert proxy.lose_delete is None  # the input's DELETE came, was done, and its answer lost
    assert not store.exists("batch/iris/input/rows.csv")
    assert "changed since it was read" not in caplog.text  # the input is gone, not "left"
    assert "queue" not in caplog.text  # a local run has no SQS message to return
    doc = json.loads(shown.out)  # --json: the failed run is a document, as one with a summary
    assert (doc["status"], doc["model"], doc["summary"]) == ("failed", "iris", None)
    assert shown.err.splitlines() == [f"aiaas batch: error: {doc['error']}"]
