"""A text model's CSV scored in shards (`aiaas batch --shards N`, the state machine's
Distributed Map in AWS) equals a single run of it.

Every shard scored the file, and then the merge opened the format with the registry's manifest
instead of the batch view the scoring paths read (a text model's token input is its text
column there): `input 'tokens' has shape [-1, -1]: CSV columns give rows of one fixed shape`,
exit 1 after all the scoring, no output, and the input removed (batch hunt)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from functions.runtime.store import LocalStore
from tests.batch_support import run
from tests.runtime.test_batch_shards import sharded
from tests.training.conftest import Published
from tests.training.test_text_serving import MODEL, TEXTS


@pytest.mark.parametrize("shards", [2, 3])
def test_a_text_csv_in_shards_equals_a_single_run(
    published: Published, tmp_path: Path, shards: int
) -> None:
    store = LocalStore(published.store_dir)
    buffer = io.StringIO()
    rows = [[i, text] for i, text in enumerate(TEXTS * 4)]
    csv.writer(buffer).writerows([["id", "text"], *rows])
    whole, parts = f"whole-{shards}.csv", f"parts-{shards}.csv"
    for name in (whole, parts):
        store.put_bytes(f"batch/{MODEL}/input/{name}", buffer.getvalue().encode())
    single = run(store, tmp_path / "single", f"batch/{MODEL}/input/{whole}")
    assert single["scored_rows"] == len(rows), single
    summary = sharded(store, tmp_path / "sharded", f"batch/{MODEL}/input/{parts}", shards, 4)
    assert (summary["status"], summary["scored_rows"]) == ("succeeded", len(rows)), summary
    assert store.get_bytes(summary["errors"]) == store.get_bytes(single["errors"])
    # The same rows and labels; scores to float32's last digits, as the rows of a chunk are
    # padded to its longest text and shards cut chunks elsewhere than a single run.
    ours, theirs = (table(store.get_bytes(s["output"])) for s in (summary, single))
    exact = ("id", "text", "pred_label")
    assert [[r[k] for k in exact] for r in ours] == [[r[k] for k in exact] for r in theirs]
    scores = [float(v) for r in ours for k, v in r.items() if k not in exact]
    expected = [float(v) for r in theirs for k, v in r.items() if k not in exact]
    assert scores == pytest.approx(expected, abs=1e-5)


def table(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))
