"""`aiaas batch --shards N` ends a run the model fails as one process does: a failed summary
with the same reason, and the uploaded input kept.

The model refusing every row of the first chunk is a final failure. One process (and its
worker processes) records it in a failed summary and keeps the input; in shards the first
shard's error went up to the CLI as if the store had failed, which wrote no summary and deleted
the input: the reason was lost, and the control plane no longer knew the job. A real skl2onnx
pipeline whose OneHotEncoder refuses a category it never saw, on the directory store and on
moto's S3 server, through the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.runtime.batch import parallel
from functions.runtime.batch import settings as batch_settings
from functions.runtime.store import ObjectStore
from infra.cli.main import main
from tests.sklearn_models import region_frame, region_pipeline

# A CSV's first chunk: the header and 3 rows, all refused, and within the first of 3 shards
# (about 8 rows) as in the first worker block.
CHUNK_ROWS = 4
# What differs between runs of the same bytes under other names, uploaded at other times (a
# directory store's ETag holds the file's mtime), and the shards a run was asked for; all else
# of the summaries must be equal.
PER_RUN = {"run_id", "input", "etag", "output", "errors", "started_at", "finished_at", "timings"}
PER_RUN |= {"shards"}
Summary = dict[str, object] | None


@pytest.fixture
def wine(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ObjectStore, Path]]:
    """The store with `wine` (unknown regions refused) published, and a CSV of 24 rows whose
    first 12 hold a region the model never saw."""
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "wine.onnx"
    model.write_bytes(region_pipeline()[1])
    assert main(["--store", store.uri, "publish", str(model), "--name", "wine"]) == 0
    frame = region_frame(24)
    frame.loc[:11, "region"] = "west"
    frame.to_csv(tmp_path / "rows.csv", index=False)
    yield store, tmp_path / "rows.csv"
    parallel._stop_pool()  # the worker processes of the run with AIAAS_BATCH_WORKERS=2
    parallel._pool = None


def batch(store: ObjectStore, data: Path, name: str, *flags: str) -> tuple[int, Summary]:
    """(exit code, stored summary or None) of `aiaas batch wine DATA --name NAME FLAGS`."""
    args = ["--store", store.uri, "batch", "wine", str(data), "--name", name, *flags]
    code = main([*args, "--chunk-rows", str(CHUNK_ROWS), "--no-progress"])
    key = f"batch/wine/output/{name}.summary.json"
    return code, json.loads(store.get_bytes(key)) if store.exists(key) else None


def test_a_run_whose_first_chunk_is_refused_fails_alike_with_or_without_shards(
    wine: tuple[ObjectStore, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store, data = wine
    runs = {"one.csv": batch(store, data, "one.csv")}
    with pytest.MonkeyPatch.context() as workers:  # blocks of ~300 bytes on 2 processes
        workers.setenv("AIAAS_BATCH_WORKERS", "2")
        workers.setattr(batch_settings, "PARALLEL_MIN_BYTES", 0)
        workers.setattr(parallel, "BLOCK_BYTES", 300)
        runs["workers.csv"] = batch(store, data, "workers.csv")
    one = runs["one.csv"][1]
    assert one is not None and one["status"] == "failed"
    assert str(one["error"]).startswith(
        f"model wine:1 refused every one of the {CHUNK_ROWS - 1} rows it was given before "
        "scoring any (the first: input 'region': 'west' is not a category the model was "
        "trained on "
    )
    capsys.readouterr()
    runs["two.csv"] = batch(store, data, "two.csv", "--shards", "2", "--json")
    printed = capsys.readouterr().out
    runs["three.csv"] = batch(store, data, "three.csv", "--shards", "3", "--workers", "2")
    # One line on stderr: the summary's reason, as for every failed run.
    assert capsys.readouterr().err == f"aiaas batch: error: {one['error']}\n"

    summaries = {}
    for name, (code, summary) in runs.items():
        assert code == 1, name
        assert summary is not None, f"{name}: no summary"
        assert {k: v for k, v in summary.items() if k not in PER_RUN} == {
            k: v for k, v in one.items() if k not in PER_RUN
        }, name
        summaries[name] = summary
        # The input stays, so the job is still there to read (and no output is).
        assert store.get_bytes(f"batch/wine/input/{name}") == data.read_bytes(), name
        assert not store.exists(f"batch/wine/output/{name}"), name
    assert [summaries[name]["shards"] for name in runs] == [1, 1, 2, 3]
    doc = json.loads(printed)  # --json prints the summary the run wrote
    assert doc.pop("store") == store.uri.rstrip("/")
    assert doc.pop("summary") == "batch/wine/output/two.csv.summary.json"
    assert doc == summaries["two.csv"]
    assert list(store.list_keys("batch/wine/work")) == []  # no shard parts left
