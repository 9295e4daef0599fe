"""A `.txt` of texts is one text a line, its lines ended by LF, CRLF or CR only (hunt_journey23 4).

`aiaas explain --file` and `aiaas baseline` read it with str.splitlines, which also ends a line
at a form feed (pdftotext's page break), a vertical tab, U+0085, U+2028 (web text) and
\\x1c-\\x1e: five texts were explained as ten pieces, numbered by lines the file does not have,
and a baseline counted the pieces. Real parts: the test transformer and its WordPiece
tokenizer.json published by the real CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_run import run
from tests.infra.test_publish_tokenizer import MODEL, published_text_model

TEXTS = [
    "where is my parcel\u2028it never arrived",
    "i was charged\x0ctwice",
    "the app crashes\x85when i open settings",
    "refund my money",
    "tracking\x1csays\x1din\x1etransit\x0b",
]


def test_a_txt_of_texts_is_one_text_a_line(tmp_path: Path) -> None:
    built = published_text_model(tmp_path)
    texts = tmp_path / "texts.txt"
    texts.write_bytes("\r\n".join(TEXTS[:2]).encode() + b"\n" + "\n".join(TEXTS[2:]).encode())
    why = tmp_path / "why.jsonl"
    code, out, err = run(built.store, "explain", MODEL, "--file", str(texts), "--out", str(why))
    assert code == 0, err
    rows = [json.loads(line) for line in why.read_text().splitlines()]
    assert [row["line"] for row in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["tokens"][-3:] == ["it", "never", "arrived"]  # one text, not two
    tokens = rows[2]["tokens"]  # BERT's normalizer deletes U+0085: crasheswhen is one word
    assert (tokens[:2], tokens[-3:]) == (["the", "app"], ["i", "open", "settings"])
    code, out, err = run(built.store, "baseline", MODEL, str(texts))
    assert code == 0, err
    assert "drift baseline = 5 texts" in out, out
    # As docs/explain.md says it (it read "against an all-padding row", ours, not this model's).
    assert out.rstrip().endswith(
        "no background: a text is explained against itself with every token hidden by the "
        "attention mask (special tokens kept)"
    ), out


@pytest.mark.parametrize(
    ("header", "row", "said"),
    [
        (
            "text,text_pair",
            "where is my parcel,it never arrived",
            "the column 'text_pair' holds the second texts of pairs; model tiny-bert:1 reads "
            "one text a row (column 'text'), not pairs of texts",
        ),
        (
            "text,input_ids,attention_mask",
            'where is my parcel,"[2, 5, 3]","[1, 1, 1]"',
            "the header holds both 'text' and 'input_ids': send the text alone (the model "
            "tokenizes it)",
        ),
        (
            "text,attention_mask",
            "where is my parcel,1",
            "the header has 'attention_mask', which the model's tokenizer fills from the text; "
            "send the text alone",
        ),
    ],
)
def test_a_csv_batch_refuses_beside_its_texts_is_refused_with_batchs_words(
    tmp_path: Path, header: str, row: str, said: str
) -> None:
    """`aiaas batch` refuses a CSV with a `text_pair` column (docs/text.md: never half of a
    pair answered), or token ids or a mask beside the texts (the API refuses them together);
    `aiaas explain --file` explained each row's text alone, the rest passed through as fields,
    and `aiaas baseline` binned the texts (hunt_journey23 6; the ids: leftovers7 4). Now batch's
    own check refuses it, in batch's words, the file named."""
    built = published_text_model(tmp_path)
    data = tmp_path / "rows.csv"
    data.write_text(f"{header}\n{row}\nrefund,\n")
    out_file = tmp_path / "why.jsonl"
    code, out, err = run(built.store, "explain", MODEL, "--file", str(data), "--out", str(out_file))
    assert (code, err) == (1, f"aiaas explain: error: {data}: {said}\n"), out
    assert not out_file.exists() or not out_file.read_text()
    code, out, err = run(built.store, "baseline", MODEL, str(data))
    assert (code, err) == (1, f"aiaas baseline: error: {data}: {said}\n"), out
    code, out, err = run(built.store, "batch", MODEL, str(data))  # as batch says it
    assert (code, err) == (
        1,
        f"aiaas batch: error: batch/{MODEL}/input/rows.csv: {said}\n",
    ), out


def test_a_csv_without_the_text_column_gets_batchs_advice(tmp_path: Path) -> None:
    """`aiaas explain --file` and `aiaas baseline` said only "the header lacks the text column
    'text'", where `aiaas batch` says to rename the column or publish with --text-field: now
    the same words, batch's own (leftovers6 3)."""
    built = published_text_model(tmp_path)
    texts = tmp_path / "texts.csv"
    texts.write_text("body\nwhere is my parcel\nrefund\n")
    advice = (
        ": the header lacks column(s) text; model tiny-bert:1 reads text: text (it reads one text "
        "a row from column 'text': rename the column that holds the texts to text, or publish a "
        "version with --text-field body)"
    )
    out_file = tmp_path / "why.jsonl"
    code, out, err = run(
        built.store, "explain", MODEL, "--file", str(texts), "--out", str(out_file)
    )
    assert (code, f"{texts}{advice}" in err) == (1, True), (out, err)
    code, out, err = run(built.store, "baseline", MODEL, str(texts))
    assert (code, f"{texts}{advice}" in err) == (1, True), (out, err)
    code, out, err = run(built.store, "batch", MODEL, str(texts))
    assert (code, f"batch/{MODEL}/input/texts.csv{advice}" in err) == (1, True), (out, err)
