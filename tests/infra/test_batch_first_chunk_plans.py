"""A run's outcome does not depend on `--shards` or worker processes: the span that starts the
input holds its first chunk whole, so the model is judged on the same rows however it is cut.

The model refusing every row of the input's first chunk fails the run; a later shard or worker
block whose rows are all refused reports them row by row. Shard 0 of a plan (and the first
worker block) was cut at an even share of the bytes, so it could end inside the first chunk: 12
rows the model refuses then 12 it scores, default chunk size, scored 12 of 24 in one process and
failed in 2 shards, shard 0 holding only the refused 12. Real models through the CLI on the
directory store: a skl2onnx pipeline whose OneHotEncoder refuses a category it never saw (CSV,
JSONL), and a Gather past its table (NPY).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.batch import parallel
from functions.runtime.batch import settings as batch_settings
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_batch_refused_rows import lookup_model
from tests.sklearn_models import region_frame, region_pipeline

# What differs between runs of the same bytes under other names (and the shards asked for).
PER_RUN = {"run_id", "input", "etag", "output", "errors", "started_at", "finished_at", "timings"}
PER_RUN |= {"rows_per_second", "shards"}
Runs = dict[str, dict[str, object]]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStore]:
    """A directory store with `wine` (unknown regions refused) and `lookup` (an index past its
    5-row table refused) published by the CLI."""
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    store = LocalStore(tmp_path / "store")
    (tmp_path / "wine.onnx").write_bytes(region_pipeline()[1])
    lookup = lookup_model(tmp_path / "lookup.onnx")
    for path, name in ((tmp_path / "wine.onnx", "wine"), (lookup, "lookup")):
        assert main(["--store", store.uri, "publish", str(path), "--name", name]) == 0
    yield store
    parallel._stop_pool()  # the worker processes of the runs with AIAAS_BATCH_WORKERS=2
    parallel._pool = None


def wine_rows(path: Path, refused: slice, unreadable: slice = slice(0)) -> Path:
    """24 rows of `wine`'s columns: those in `refused` hold a region the model never saw, those
    in `unreadable` a malic value that is no number."""
    frame = region_frame(24)
    frame["malic"] = frame["malic"].astype(object)
    frame.loc[frame.index[refused], "region"] = "west"
    frame.loc[frame.index[unreadable], "malic"] = "n/a"
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


def lookup_rows(path: Path) -> Path:
    """24 indices: the first 12 past `lookup`'s table, then 12 in it."""
    np.save(path, np.array([9] * 12 + [0, 1, 2, 3] * 3, dtype=np.int64)[:, None])
    return path


def outcomes(
    store: LocalStore,
    model: str,
    data: Path,
    *flags: str,
    shards: tuple[int, ...] = (2, 3),
    code: int = 0,
) -> Runs:
    """Each run's summary: one process, each count of `shards` (on 2 processes), and (text)
    worker processes given blocks of ~300 bytes; every run exits `code`."""
    ways = {"one": [], **{f"shards{n}": ["--shards", str(n), "--workers", "2"] for n in shards}}
    runs: Runs = {}
    for way, extra in [*ways.items(), *([("workers", [])] if data.suffix != ".npy" else [])]:
        name = f"{way}{data.suffix}"
        args = ["--store", store.uri, "batch", model, str(data), "--name", name, *flags, *extra]
        with pytest.MonkeyPatch.context() as workers:
            if way == "workers":
                workers.setenv("AIAAS_BATCH_WORKERS", "2")
                workers.setattr(batch_settings, "PARALLEL_MIN_BYTES", 0)
                workers.setattr(parallel, "BLOCK_BYTES", 300)
            assert main([*args, "--no-progress"]) == code, way
        runs[name] = json.loads(store.get_bytes(f"batch/{model}/output/{name}.summary.json"))
    return runs


def assert_alike(store: LocalStore, model: str, runs: Runs) -> None:
    """The summaries equal apart from per-run fields, the errors byte for byte, the outputs'
    cells alike (scores to float32's last digits: other cuts run other batches)."""
    (first, one), *others = runs.items()
    for name, summary in others:
        assert summary["shards"] == (1 if name.startswith(("one", "workers")) else int(name[6]))
        assert {k: v for k, v in summary.items() if k not in PER_RUN} == {
            k: v for k, v in one.items() if k not in PER_RUN
        }, name
        out = f"batch/{model}/output"
        errors = f"{out}/{name}.errors.jsonl"
        assert store.get_bytes(errors) == store.get_bytes(f"{out}/{first}.errors.jsonl"), name
        assert_cells_alike(cells(store, f"{out}/{name}"), cells(store, f"{out}/{first}"), name)


def cells(store: LocalStore, key: str) -> dict[str, list[object]]:
    """An output's columns: a CSV's cells as text, a JSONL's values, an .npz's arrays."""
    if key.endswith(".npy"):
        arrays = np.load(io.BytesIO(store.get_bytes(key.removesuffix(".npy") + ".npz")))
        return {name: arrays[name].tolist() for name in arrays.files}
    lines = store.get_bytes(key).decode().splitlines()
    if key.endswith(".csv"):
        rows = [line.split(",") for line in lines]
        return {name: [row[i] for row in rows[1:]] for i, name in enumerate(rows[0])}
    records = [json.loads(line) for line in lines]
    return {name: [record[name] for record in records] for name in records[0]}


def assert_cells_alike(
    got: dict[str, list[object]], want: dict[str, list[object]], name: str
) -> None:
    assert list(got) == list(want), name
    for column, values in want.items():
        mine, theirs = numbers_or_text(got[column]), numbers_or_text(values)
        if theirs.dtype == object:
            assert mine.tolist() == theirs.tolist(), (name, column)
        else:
            np.testing.assert_allclose(mine, theirs, rtol=1e-6, err_msg=f"{name} {column}")


def numbers_or_text(values: list[object]) -> np.ndarray:
    """A column as numbers (NaN for a row not scored) where every cell is one, else as text."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.asarray(values, dtype=object)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_refused_rows_before_good_ones_in_the_first_chunk_score_alike_in_shards_and_workers(
    store: LocalStore, tmp_path: Path, suffix: str
) -> None:
    """The reported case: 12 refused rows, then 12 good ones, the default chunk size."""
    data = wine_rows(tmp_path / f"rows{suffix}", refused=slice(0, 12))
    runs = outcomes(store, "wine", data)
    one = runs[f"one{suffix}"]
    assert (one["status"], one["scored_rows"], one["failed_rows"]) == ("succeeded", 12, 12)
    assert_alike(store, "wine", runs)


def test_an_npy_whose_first_chunk_starts_with_refused_rows_scores_alike_in_shards(
    store: LocalStore, tmp_path: Path
) -> None:
    """Rows, not bytes: the first shard of an array ends no earlier than its first chunk."""
    runs = outcomes(store, "lookup", lookup_rows(tmp_path / "rows.npy"))
    one = runs["one.npy"]
    assert (one["status"], one["scored_rows"], one["failed_rows"]) == ("succeeded", 12, 12)
    assert_alike(store, "lookup", runs)


def test_a_first_chunk_of_unreadable_rows_judges_the_model_however_the_input_is_cut(
    store: LocalStore, tmp_path: Path
) -> None:
    """Chunks of 4 rows (the first: the header and 3): rows 1-3 unreadable, rows 4-7 refused,
    the rest scored. One process judged the model on the first chunk it was given rows of, the
    second, and failed the run, where in 6 shards the second shard starts at that chunk and
    reported its rows. The first chunk judges, whether the model can read its rows or not: the
    run succeeds, with the refused rows reported."""
    data = wine_rows(tmp_path / "gaps.csv", refused=slice(3, 7), unreadable=slice(0, 3))
    runs = outcomes(store, "wine", data, "--chunk-rows", "4", shards=(6,))
    one = runs["one.csv"]
    assert (one["status"], one["scored_rows"], one["failed_rows"]) == ("succeeded", 17, 7)
    assert_alike(store, "wine", runs)


def test_a_csv_header_alone_in_the_first_chunk_leaves_the_judging_to_the_next(
    store: LocalStore, tmp_path: Path
) -> None:
    """Chunks of 1 row: a CSV's first chunk is its header, and the next, its first row, is the
    one the model is judged on, refused here: the run fails alike however it is cut."""
    data = wine_rows(tmp_path / "ones.csv", refused=slice(0, 12))
    runs = outcomes(store, "wine", data, "--chunk-rows", "1", code=1)
    one = runs["one.csv"]
    assert str(one["error"]).startswith("model wine:1 refused every one of the 1 rows it was ")
    for name, summary in runs.items():
        assert {k: v for k, v in summary.items() if k not in PER_RUN} == {
            k: v for k, v in one.items() if k not in PER_RUN
        }, name
