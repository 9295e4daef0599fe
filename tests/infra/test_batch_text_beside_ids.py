"""A batch record holding token ids (or their mask) beside its text (leftovers6 1).

The online API refuses a record of both (`instances[0] holds both 'text' and 'input_ids'`);
a batch JSONL line of both was scored from its text and its ids passed over unsaid, and a CSV
with an `input_ids` column beside `text` likewise every row. Now the line is one bad row in
the online API's words (the rest of the file scored) and the CSV is refused before anything is
scored, as a `text_pair` column is. Real parts: the test transformer (input_ids,
attention_mask, token_type_ids) and its WordPiece tokenizer.json published by the real CLI.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from functions.runtime.codecs.simple import decode
from functions.runtime.errors import InvalidInput
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.batch_support import read_jsonl, run
from tests.infra.test_publish_tokenizer import MODEL, published_text_model

BOTH = "holds both 'text' and 'input_ids': send the text alone (the model tokenizes it)"
MASK = "has 'attention_mask', which the model's tokenizer fills from the text; send the text alone"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    return published_text_model(tmp_path_factory.mktemp("beside")).store


def test_a_jsonl_row_of_text_and_ids_is_one_bad_row(store: LocalStore, tmp_path: Path) -> None:
    rows = [
        {"id": 1, "text": "where is my parcel"},
        {"id": 2, "text": "refund", "input_ids": [[2, 3]], "attention_mask": [[1, 1]]},
        {"id": 3, "text": "the app crashes", "attention_mask": [[1, 1, 1]]},
        {"id": 4, "text": "refund my money"},
    ]
    key = f"batch/{MODEL}/input/beside.jsonl"
    store.put_bytes(key, "".join(json.dumps(row) + "\n" for row in rows).encode())
    summary = run(store, tmp_path, key)
    assert (summary["scored_rows"], summary["failed_rows"]) == (2, 2), summary
    assert [row["id"] for row in read_jsonl(store, summary["output"])] == [1, 4]
    assert read_jsonl(store, summary["errors"]) == [
        {"line": 2, "error": f"the row {BOTH}"},
        {"line": 3, "error": f"the row {MASK}"},
    ]


def test_the_online_api_says_the_same(store: LocalStore) -> None:
    """The words batch now shares: the simple route's, which also names token ids."""
    model = Registry(store).manifest(MODEL, "1")
    body = {"instances": [{"text": "refund", "input_ids": [[2, 3]]}]}
    with pytest.raises(InvalidInput, match=re.escape(f"instances[0] {BOTH}, or token ids alone")):
        decode(body, model)
    body = {"instances": [{"text": "refund", "attention_mask": [[1]]}]}
    with pytest.raises(InvalidInput, match=re.escape(f"instances[0] {MASK}, or token ids with it")):
        decode(body, model)
    assert decode({"instances": [{"text": "refund"}]}, model)["text"].tolist() == ["refund"]


@pytest.mark.parametrize(
    ("header", "why"),
    [("id,text,input_ids", BOTH), ("text,attention_mask", MASK)],
)
def test_a_csv_of_texts_and_ids_is_refused(
    store: LocalStore, tmp_path: Path, header: str, why: str
) -> None:
    key = f"batch/{MODEL}/input/{header.replace(',', '_')}.csv"
    cells = ",".join("1" if name != "text" else "refund" for name in header.split(","))
    store.put_bytes(key, f"{header}\n{cells}\n".encode())
    summary = run(store, tmp_path, key)
    assert (summary["status"], summary["scored_rows"]) == ("failed", 0), summary
    assert summary["error"] == f"{key}: the header {why}", summary
