"""CSV files as spreadsheets and other tools export them, through `aiaas train --check`.

Each file is written as the exporting tool writes it (bytes, not Python's csv module), and the
CLI's whole message is asserted: one line that says what to fix, never a traceback, and never a
column silently renamed or dropped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.conftest import blobs_rows
from tests.training.test_check import _check, _error, _spec

ROWS = blobs_rows(30)


def _body(separator: str = ",", newline: str = "\n") -> str:
    return "".join(separator.join(str(v) for v in row) + newline for row in ROWS)


def test_excel_bom_and_crlf_read_as_plain_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Excel's "CSV UTF-8": a byte order mark, then CRLF lines. The mark used to become part of
    # the first column's name ('\ufeffa'), so `features: [a, b]` said there was no column 'a'.
    (tmp_path / "excel.csv").write_bytes(
        b"\xef\xbb\xbf" + ("a,b,colour\r\n" + _body(newline="\r\n")).encode()
    )
    spec = _spec(tmp_path, {"path": "excel.csv", "target": "colour", "features": ["a", "b"]})
    code, out, err = _check(tmp_path, spec, capsys)
    assert (code, err) == (0, "")
    assert "30 rows (all read); 2 features: a, b; target 'colour': 3 classes" in out


def test_a_column_named_twice_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Read into a dict of columns, the second 'a' replaced the first: the model trained on one
    # column fewer than the file has, and nothing said so.
    (tmp_path / "dup.csv").write_text("a,a,colour\n" + _body())
    spec = _spec(tmp_path, {"path": "dup.csv", "target": "colour"})
    assert _error(tmp_path, spec, capsys) == (
        "dup.csv line 1 names column 'a' 2 times (columns 1, 2); give each column its own name"
    )


def test_a_latin1_file_names_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Excel's plain "CSV" on Windows is cp1252: 'é' is one byte 0xe9. It was a traceback.
    text = "a,b,colour\n" + _body()
    text = text.replace("red", "rouge-\xe9", 1)
    (tmp_path / "latin.csv").write_bytes(text.encode("latin-1"))
    spec = _spec(tmp_path, {"path": "latin.csv", "target": "colour"})
    line = 1 + next(i for i, row in enumerate(ROWS, start=1) if row[2] == "red")
    assert _error(tmp_path, spec, capsys) == (
        f"latin.csv line {line} is not UTF-8 text (byte 0xe9); save the file as UTF-8 "
        "(CSV UTF-8 in Excel)"
    )


@pytest.mark.parametrize(("separator", "shown"), [(";", "';'"), ("\t", "'\\t'")])
def test_a_file_separated_otherwise_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], separator: str, shown: str
) -> None:
    # European Excel writes `;` (its decimal mark is the comma); other tools write tabs.
    header = separator.join(["a", "b", "colour"])
    body = _body(separator).replace(".", ",") if separator == ";" else _body(separator)
    (tmp_path / "other.csv").write_text(header + "\n" + body)
    spec = _spec(tmp_path, {"path": "other.csv", "target": "colour"})
    assert _error(tmp_path, spec, capsys) == (
        f"other.csv line 1 reads as one column {header!r}, separated by {shown}; "
        "save the file with commas between fields"
    )


def test_an_unnamed_column_is_refused_unless_the_features_leave_it_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # pandas' df.to_csv() writes the index first, under an empty name. It became a feature
    # named '' that no caller could send by name.
    body = "".join(f"{i}," + ",".join(str(v) for v in row) + "\n" for i, row in enumerate(ROWS))
    (tmp_path / "pandas.csv").write_text(",a,b,colour\n" + body)
    spec = _spec(tmp_path, {"path": "pandas.csv", "target": "colour"})
    assert _error(tmp_path, spec, capsys) == (
        "data set pandas.csv has a column with no name (column 1; pandas writes its index so "
        "unless to_csv(index=False)); name it in the header, or list the feature columns in "
        "dataset.features"
    )
    listed = _spec(tmp_path, {"path": "pandas.csv", "target": "colour", "features": ["a", "b"]})
    assert _check(tmp_path, listed, capsys)[0] == 0


def test_a_comma_ending_every_line_is_said_so_not_blamed_on_pandas_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `a,b,colour,` and `0.1,0.2,red,`: the fourth column has no name and no value; the refusal
    # said "pandas writes its index so", which is the first column's story.
    (tmp_path / "trail.csv").write_text("a,b,colour,\n" + _body().replace("\n", ",\n"))
    spec = _spec(tmp_path, {"path": "trail.csv", "target": "colour"})
    assert _error(tmp_path, spec, capsys) == (
        "data set trail.csv has a column with no name (column 4; the last, empty in every row: "
        "a comma ends every line, the header's too); delete the comma at the end of each line, "
        "or list the feature columns in dataset.features"
    )
    # One in the middle is a name left out of the header.
    (tmp_path / "gap.csv").write_text("a,,colour\n" + _body())
    spec = _spec(tmp_path, {"path": "gap.csv", "target": "colour"})
    assert _error(tmp_path, spec, capsys) == (
        "data set gap.csv has a column with no name (column 2; its name is empty in the "
        "header); name it in the header, or list the feature columns in dataset.features"
    )
    listed = _spec(tmp_path, {"path": "trail.csv", "target": "colour", "features": ["a", "b"]})
    assert _check(tmp_path, listed, capsys)[0] == 0


def test_spaces_around_header_names_are_not_part_of_the_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Batch scoring strips them from a file's header; training kept them, so the model wanted
    # ' b ' and `aiaas batch` of its own training file said "the header lacks column(s)  b ".
    (tmp_path / "spaced.csv").write_text(" a , b ,colour\n" + _body())
    spec = _spec(tmp_path, {"path": "spaced.csv", "target": "colour", "exclude": ["a"]})
    code, out, err = _check(tmp_path, spec, capsys)
    assert (code, err) == (0, "")
    assert "1 features: b; target 'colour'" in out
    (tmp_path / "twice.csv").write_text("a, a,colour\n" + _body())
    spec = _spec(tmp_path, {"path": "twice.csv", "target": "colour"})
    assert _error(tmp_path, spec, capsys).startswith("twice.csv line 1 names column 'a' 2 times")


@pytest.mark.parametrize(
    ("cells", "dataset", "message"),
    [
        # 'NA' (pandas, R) was "a non-numeric value 'NA' ...; drop it with dataset.exclude".
        # A few gaps are filled with the training median; half the column is refused.
        (
            {(i, 1): "NA" if i % 4 else "" for i in range(1, 30, 2)},
            {"target": "colour"},
            "feature column 'b' has 15 missing values in 30 rows (50%), the first ('NA') at line "
            "3 of x.csv; training fills gaps only in columns missing under half their values: "
            "fill more in, or drop the column with dataset.exclude",
        ),
        # An empty column was "has a missing value at line 2", as if one cell were the trouble.
        (
            {(i, 1): "" for i in range(30)},
            {"target": "colour"},
            "feature column 'b' is empty in every row (30 rows); drop it with dataset.exclude or "
            "list the numeric columns in dataset.features",
        ),
        # Excel's decimal comma, quoted: the advice was to drop the column.
        (
            {(0, 0): "1,5", (0, 1): "2,5"},  # in every column: not "text columns"
            {"target": "colour"},
            "feature column 'a' has a non-numeric value "
            "'1,5' at line 2 of x.csv; write numbers with no thousands separator and a point for "
            "decimals (1.5)",
        ),
        # Thousands separators: not a decimal comma to turn into a point (1.234).
        (
            {(2, 1): "1,234.5"},
            {"target": "colour"},
            "feature column 'b' has a non-numeric value '1,234.5' at line 4 of x.csv; write "
            "numbers with no thousands separator and a point for decimals (1.5)",
        ),
        # 'NA' in a regression target said "set task: classification".
        (
            {(4, 0): "NA"},
            {"target": "a", "task": "regression", "exclude": ["colour"]},
            "target 'a' has 1 missing value in 30 rows, the first ('NA') at line 6 of x.csv; "
            "drop the rows without a target (a model learns nothing from them)",
        ),
    ],
)
def test_missing_cells_say_how_many_and_what_to_do(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cells: dict[tuple[int, int], str],
    dataset: dict[str, object],
    message: str,
) -> None:
    rows = [list(row) for row in ROWS]
    for (row, column), value in cells.items():
        rows[row][column] = value
    (tmp_path / "x.csv").write_text(
        "a,b,colour\n" + "".join(",".join(f'"{v}"' for v in r) + "\n" for r in rows)
    )
    task = dataset.pop("task", "classification")
    spec = _spec(tmp_path, {"path": "x.csv", **dataset}, task=task)
    assert _error(tmp_path, spec, capsys) == message


def test_an_id_is_refused_and_a_category_is_encoded_and_a_constant_one_is_warned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An id and a category beside numbers: the category is one-hot encoded by training; the id
    # (a different text in every row) is no category and is refused, saying to drop it. A
    # constant column trained silently.
    body = "".join(f"id-{i},{['x', 'y'][i % 2]},{a},1,{c}\n" for i, (a, _, c) in enumerate(ROWS))
    (tmp_path / "t.csv").write_text("sample_id,kind,a,const,colour\n" + body)
    spec = _spec(tmp_path, {"path": "t.csv", "target": "colour"})
    assert _error(tmp_path, spec, capsys) == (
        "feature column 'sample_id' (a different value in each of 18 training rows, e.g. "
        "'id-0') holds text that is no category (at most 50 distinct values in the training "
        "split are one-hot encoded): an id, a name or free text; add it to dataset.exclude "
        "([sample_id])"
    )
    spec = _spec(tmp_path, {"path": "t.csv", "target": "colour", "exclude": ["sample_id"]})
    code, out, err = _check(tmp_path, spec, capsys)
    assert (code, err) == (
        0,
        "warning: feature column 'const' (1) holds one value in every row; it tells the model "
        "nothing: add it to dataset.exclude\n",
    )
    assert "3 features: kind, a, const (text, one-hot encoded: kind);" in out


def test_blank_lines_are_skipped_as_batch_skips_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A file ending in empty lines (an editor's, a concatenation's) was "line 32 has 0 fields";
    # `aiaas batch` scores the same file. Lines keep their numbers in messages.
    (tmp_path / "b.csv").write_text("a,b,colour\n" + _body() + "\n\n")
    spec = _spec(tmp_path, {"path": "b.csv", "target": "colour"})
    code, out, err = _check(tmp_path, spec, capsys)
    assert (code, err) == (0, "")
    assert "30 rows (all read)" in out
    (tmp_path / "b.csv").write_text("a,b,colour\n\n1,x,red\n" + _body())
    assert _error(tmp_path, spec, capsys).endswith(
        "'x' at line 3 of b.csv; drop it with dataset.exclude or list the numeric columns in "
        "dataset.features"
    )


def test_a_unit_after_a_gap_is_named_not_the_gap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An export with `NA` cells (gaps, filled) and a unit in a later cell: the error named the
    # first gap ('NA') as the non-numeric value and said to drop the column.
    rows = [list(row) for row in ROWS]
    rows[1][1], rows[5][1] = "NA", "3.5kg"
    (tmp_path / "units.csv").write_text("a,b,colour\n" + _body_of(rows))
    spec = _spec(tmp_path, {"path": "units.csv", "target": "colour"})
    assert _error(tmp_path, spec, capsys) == (
        "feature column 'b' has a non-numeric value '3.5kg' at line 7 of units.csv; write the "
        "number alone in every cell (the unit belongs in the header)"
    )


def test_copied_rows_are_a_warning_and_do_not_hide_an_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An export that doubled some rows: a copy in the training and the test split inflates the
    # test metrics, and the copies made customer_id not unique, so it was not called an id.
    rows = [[1000 + (i * 7) % 30, *row] for i, row in enumerate(ROWS)]
    (tmp_path / "copies.csv").write_text("customer_id,a,b,colour\n" + _body_of(rows + rows[:3]))
    spec = _spec(tmp_path, {"path": "copies.csv", "target": "colour"})
    code, _, err = _check(tmp_path, spec, capsys)
    assert code == 0
    assert err.splitlines() == [
        "warning: 3 rows repeat an earlier row (features and target), the first at line 32 of "
        "copies.csv, a copy of line 2: a copy in both the training and the test split makes the "
        "test metrics promise more than new rows will give; drop the repeated rows (pandas: "
        "df.drop_duplicates())",
        "warning: feature column 'customer_id' looks like a row id (named like an id, unique in "
        "every row); a model can learn the row order instead of the data: add it to "
        "dataset.exclude",
    ]


def _body_of(rows: list[list[object]]) -> str:
    return "".join(",".join(str(v) for v in row) + "\n" for row in rows)


def test_a_date_column_is_refused_as_dates_with_the_numbers_to_derive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A house sale's `sold_on` (2020-01-01 ... 2024-02-08 over 20,000 rows) was refused as "an
    # id, a name or free text": a data scientist was told to drop it, never that numbers
    # derived from it can be learned. Told apart from a free-text column in the same file.
    lines = []
    for i, (a, b, c) in enumerate(blobs_rows(200)):
        day = f"2021-{1 + i % 12:02d}-{1 + i % 28:02d}{' 10:30' * (i % 3 == 0)}"
        lines.append(f"{day},{'' if i == 5 else f'note {i % 70}'},{a},{b},{c}\n")
    (tmp_path / "t.csv").write_text("sold_on,note,a,b,colour\n" + "".join(lines))
    spec = _spec(tmp_path, {"path": "t.csv", "target": "colour", "exclude": ["note"]})
    assert _error(tmp_path, spec, capsys) == (
        "feature column 'sold_on' (75 distinct values, e.g. '2021-01-01 10:30') holds dates, "
        "which are no category (at most 50 distinct values in the training split are one-hot "
        "encoded): a later date would be none of them; derive numbers from it (days since a "
        "date, month, weekday) in columns of their own, or add it to dataset.exclude ([sold_on])"
    )
    message = _error(tmp_path, _spec(tmp_path, {"path": "t.csv", "target": "colour"}), capsys)
    assert message.startswith(
        "feature column 'note' (66 distinct values, e.g. '') holds text that is no category "
    )
    assert (
        "an id, a name or free text; add it to dataset.exclude ([note]); feature column "
        "'sold_on' (75 distinct values, e.g. '2021-01-01 10:30') holds dates" in message
    )
