"""The rows of a file `aiaas explain --file` and `aiaas baseline` read: a model's rows of a
.npy or a CSV (by column name), or a text model's texts. Read as UTF-8, a spreadsheet's byte
order mark left out of the first column's name; a file in another encoding (UTF-16, a binary
file) is one line naming the line to fix, not a UnicodeDecodeError traceback."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from functions.runtime import csv_fields
from functions.runtime.batch.csv_header import (
    HeaderMismatch,
    csv_layout,
    header_hint,
    refuse_beside_text,
    texts_hint,
)
from functions.runtime.batch.layout import IMAGE_SUFFIXES, TABLES
from functions.runtime.batch.npy import NpyHeader, check_rows
from functions.runtime.capture.rows import META
from functions.runtime.column_names import column_for
from functions.runtime.errors import BadRequest
from functions.runtime.explain.explainer import explained_columns
from functions.runtime.input_columns import (
    EXACT_INTEGERS,
    InputColumns,
    exact_floats,
    wide_float,
)
from functions.runtime.input_messages import grey_axis_missing
from functions.runtime.manifest import ModelManifest
from functions.runtime.text_input import batch_view
from infra.cli.array_file_advice import other_arrays
from infra.cli.explain_file import own_fields
from infra.cli.file_args import file_suffix, require_file
from infra.cli.row_cells import (
    BOOL_TEXT,
    bool_columns,
    gap_columns,
    integer_columns,
    missing_categories,
    row_values,
    table_cells,
)
from training.csv_table import looks_like_data, not_utf8


@contextlib.contextmanager
def utf8_text(path: Path, lenient: bool = False) -> Iterator[IO[str]]:
    """`path` opened for csv as UTF-8 text; a byte that is not UTF-8 a BadRequest naming it,
    or, `lenient`, kept as a lone surrogate for the caller to report its row (`not_utf8_at`)."""
    errors = "surrogateescape" if lenient else "strict"
    try:
        with path.open(newline="", encoding="utf-8-sig", errors=errors) as handle:
            yield handle
    except UnicodeDecodeError:
        raise BadRequest(not_utf8(path)) from None


def not_utf8_at(text: str) -> str | None:
    """Where a text read by `utf8_text(lenient=True)` held a byte that is not UTF-8, as batch
    says it of its rows (`not valid UTF-8 (byte 3)`, 1-based); None for UTF-8 text."""
    for index, char in enumerate(text):
        if "\udc80" <= char <= "\udcff":
            return (
                f"not valid UTF-8 (byte {len(text[:index].encode('utf-8', 'surrogateescape')) + 1})"
            )
    return None


# Where a line of texts ends: a line feed, CRLF or CR, as a text editor and `wc -l` count them.
# str.splitlines also split at a form feed (pdftotext's page break), a vertical tab, U+0085 and
# U+2028 (web text) and \x1c-\x1e, so one text of such a line was explained and baselined as two.
LINE_BREAK = re.compile(r"\r\n|\r|\n")
CSV_SUFFIXES = ("", ".csv", ".txt")  # what read_rows reads as CSV, .npy aside
CAPTURE_COLUMNS = frozenset(META)  # what `aiaas capture export` writes first: a capture export


def refuse_binary(path: Path, arrays: str = ".npy") -> None:
    """A 400 naming what to send for a file that is no CSV text: an array file of the format
    the command does not read (the training job's word, `dataset.format`, was said of an .npz
    here, where no such option exists), an encoded image (it was told to save the file as
    UTF-8), a table file (Parquet) or any other format. `arrays`: the array file the command
    reads (`publish --data`: an .npz, its rows with their labels; the others: an .npy)."""
    suffix = file_suffix(path)
    reads = f".csv, .jsonl or {arrays}"
    if suffix in (".npz", ".npy") and suffix != arrays:
        raise BadRequest(other_arrays(path, reads))
    if suffix in IMAGE_SUFFIXES:
        saved = path.with_suffix(arrays).name
        pixels = f"np.asarray(PIL.Image.open({path.name!r}))[None]"
        save = f"np.save({saved!r}, {pixels})"
        if arrays == ".npz":
            save = f"np.savez({saved!r}, x={pixels}, y=[LABEL])"
        raise BadRequest(
            f"{path} is an encoded image; models take pixel values: decode it into an {arrays} "
            f"of images as the model takes them (numpy and Pillow: {save}), or send .csv or "
            ".jsonl rows"
        )
    table = TABLES.get(suffix)
    if table is not None:  # read as CSV, its bytes said to lack the model's columns
        csv = path.with_suffix(".csv").name
        raise BadRequest(
            f"{path} is a {table[0]} file; this command reads {reads}: write it as "
            f"CSV (pandas: pd.{table[1]}({path.name!r}).to_csv({csv!r}, index=False))"
        )
    if suffix == ".gz":  # batch reads rows.csv.gz; here the bytes would be quoted as a header
        raise BadRequest(
            f"{path} is gzip-compressed; this command reads {reads} as they are: "
            f"decompress it first (gunzip -k {path.name})"
        )
    if suffix not in CSV_SUFFIXES:  # an .onnx given for the data: its bytes quoted as a header
        # A CSV named `sales.2024-11` is refused too: which extensions are read is the docs'
        # list (docs/explain.md), and renaming is all it takes.
        raise BadRequest(
            f"{path}: unsupported input format {suffix!r}; this command reads {reads} (a CSV "
            "file may also end in .txt, or have no extension): rename a CSV file to end in .csv, "
            "a JSONL file to end in .jsonl"
        )


def read_rows(
    path: Path,
    manifest: ModelManifest,
    bad: dict[int, str] | None = None,
    records: list[dict[str, Any]] | None = None,
    lines: list[int] | None = None,
    exact: bool = False,
) -> np.ndarray:
    """The model rows [N, F] of a .npy file, or of a CSV by column names (feature names, a
    DataFrame export's input names; else as batch reads them: X_0, X_1, ...). A CSV row whose
    numeric cells are not all numbers is an error, or with `bad`, kept out and noted there. A
    model with a string column gets an object array: that column's cells as they are, the
    others as floats. With `records`, each CSV row's other cells (ids, ground truth) are added
    to it. An empty cell is NaN where the model takes missing values (as `aiaas batch`
    reads it). With `lines`, each CSV row's line number is added to it (as an editor
    counts them, the header line 1; a row quoted over several lines, its first, as batch).
    With `exact` (rows to explain), an integer input's values past 2^53 (an id, a hash) are
    kept as written, not float64's rounding of them: whole numbers beside strings, else the
    rows in a wider float (`exact_floats`)."""
    columns = explained_columns(manifest)
    width = columns.width
    require_file(path)
    if file_suffix(path) == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as exc:  # an object array (only pickle reads it), or no .npy at all
            raise BadRequest(f"{path}: {exc}; save the rows as a numeric array") from None
        if array.ndim > 2 and len(manifest.inputs) == 1:
            # Images as batch reads them: channels on the wrong side, flattened, would be
            # rows of scrambled pixels (a background, drift bins) stored without a word.
            check_rows(NpyHeader(array.shape, array.dtype, 0), manifest, str(path))
        if math.prod(array.shape[1:]) != width:  # else reshaped into rows of the wrong values
            raise BadRequest(_wrong_width(path, array.shape, manifest, columns))
        array = array.reshape(len(array), -1)
        if columns.strings:
            return table_cells(array.tolist(), columns.strings)
        wide = exact and array.dtype.kind in "iu"
        kind: Any = exact_floats([array]) if wide else np.float64
        return np.asarray(array, dtype=kind)
    refuse_binary(path)
    with utf8_text(path) as handle:
        reader = csv_fields.dict_reader(handle)
        header = list(reader.fieldnames or [])
        named = list(manifest.features) or (list(columns.names) if len(columns.specs) > 1 else [])
        renamed = column_for(named, header)  # a DataFrame's columns by their own names
        named = [renamed.get(name, name) for name in named]
        names = named if set(named) <= set(header) else []
        names = names or _positional(columns, width, header)
        if repeated := csv_fields.named_twice(str(path), header, names):
            raise BadRequest(repeated)  # as batch refuses it: DictReader read the last such cell
        if twice := sorted({n for n in names if names.count(n) > 1}):  # Keras: input, input_1
            raise BadRequest(
                f"{path}: {manifest.name}:{manifest.version} reads column(s) {', '.join(twice)} "
                "for two of its inputs, which one CSV column cannot be: give the rows as JSONL "
                "(one object a row, a field an input)"
            )
        missing = [n for n in names if n not in header]
        if missing and named:  # the names it reads are what to report, not X_0, ...
            missing = [n for n in named if n not in header]
        if missing:
            raise BadRequest(_missing_columns(path, manifest, named, missing, header))
        rows = []
        empty = gap_columns(columns)
        categories = missing_categories(columns)
        bools = bool_columns(columns)
        integers = integer_columns(columns) if exact else frozenset()
        captured = set(header) >= CAPTURE_COLUMNS  # an `aiaas capture export`, as batch reads it
        for index, row in enumerate(reader):
            if records is not None:
                records.append(own_fields(row, names))
            if lines is not None:
                lines.append(first_line(reader.line_num, row))
            try:
                if why := reader.misshapen():  # a cell too many read the row shifted, as batch
                    raise ValueError(why)  # refuses it
                cells = [row[n] for n in names]
                for column in bools:  # pandas writes a bool column True/False, as batch reads
                    cells[column] = BOOL_TEXT.get(str(cells[column]).strip().lower(), cells[column])
                rows.append(
                    row_values(cells, columns.strings, empty, names, categories, integers, captured)
                )
            except (ValueError, TypeError) as exc:
                line = first_line(reader.line_num, row)
                if bad is None:
                    raise BadRequest(f"{path}: line {line}: {exc}") from None
                bad[index] = f"line {line}: {exc}"
        kind = object if columns.strings else np.float64
        if integers and not columns.strings:
            wide = any(abs(row[c]) >= EXACT_INTEGERS for row in rows for c in integers)
            kind = wide_float() if wide else np.float64
        return np.array(rows, dtype=kind).reshape(len(rows), len(names))


def _positional(columns: InputColumns, width: int, header: Sequence[str]) -> list[str]:
    """Unnamed columns: the ones batch scoring reads and explanations name (the input's name
    and index: X_0, X_1, ... for skl2onnx's `X`), so one CSV serves `aiaas batch`, `aiaas
    baseline` and `aiaas explain`; or x_0, x_1, ..., what explanations named them before."""
    earlier = [f"x_{i}" for i in range(width)]
    if set(earlier) <= set(header) and not set(columns.names) <= set(header):
        return earlier
    return list(columns.names)


def _wrong_width(
    path: Path, shape: tuple[int, ...], manifest: ModelManifest, columns: InputColumns
) -> str:
    """An .npy whose rows are not the model's width: it was reshaped whatever its width, and a
    baseline of it (the wrong columns binned, its values regrouped into rows of the model's
    width and predicted) was stored for good, or refused as "4 feature names for rows of 5
    values", naming neither the file nor the model."""
    ref = f"{manifest.name}:{manifest.version}"
    if len(columns.specs) == 1:
        spec = columns.specs[0]
        dims = ", ".join(["N", *(str(d) for d in spec.shape[1:])])
        reads = f"{ref}'s input '{spec.name}' reads {columns.width} a row ([{dims}])"
    else:
        reads = f"{ref} reads {columns.width} a row, its inputs' columns side by side"
    if manifest.features or len(columns.specs) > 1:
        reads += f": {_some(columns.names)}"
    got = math.prod(shape[1:])
    grey = grey_axis_missing(columns.specs[0].shape, shape) if len(columns.specs) == 1 else ""
    return (
        f"{path}: array shape {list(shape)} holds rows of {got} value{'s' * (got != 1)}; "
        f"{reads}{grey}"  # one grey image [H, W] (np.save of it): as batch says it
    )


def _missing_columns(
    path: Path, manifest: ModelManifest, named: list[str], missing: list[str], header: Sequence[str]
) -> str:
    """What to name the columns: a model published without --features reads its input's name
    and index (X_0, X_1, ...), which a user's own CSV may not have; "lacks column(s) X_0, ..."
    alone left them guessing."""
    shown = _some(missing)
    columns = explained_columns(manifest)
    width = columns.width
    if named:  # "it reads" the model's, after the same names lacked, read as the header's
        has = f"it has {_some(header)}" if header else "the file is empty"
        reads = f"model {manifest.name}:{manifest.version} reads {', '.join(named)} ({has})"
    else:
        first, last = columns.names[0], columns.names[-1]
        span = f"columns {first} to {last}" if width > 1 else f"column {first}"
        reads = (
            f"{manifest.name}:{manifest.version} has no feature names, so the header names its "
            f"{width} {span} in order, as batch reads them (or give a .npy of [N, {width}] rows)"
        )
    hint = header_hint(list(header))  # another separator, as batch says it
    hint = hint or (" (is the header line missing?)" if looks_like_data(header) else "")
    hint = hint or texts_hint(manifest, list(header))  # a file of texts, as batch asks it
    return f"{path}: the header lacks column(s) {shown}{hint}; {reads}"


def _some(names: Sequence[str]) -> str:
    return ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")


def _lacks_text(
    path: Path, header: Sequence[str], field: str, manifest: ModelManifest | None
) -> str:
    """Why a CSV without the text column is refused: batch's words (its hint to rename the
    column or publish with --text-field), where explain and baseline said only that it lacked
    the column."""
    if manifest is not None:
        line = io.StringIO()
        csv.writer(line).writerow(header)
        try:
            csv_layout(line.getvalue().encode(), batch_view(manifest), str(path))
        except HeaderMismatch as exc:
            return exc.message
    return f"{path}: the header lacks the text column {field!r}"


def read_texts(
    path: Path,
    field: str,
    records: list[dict[str, Any]] | None = None,
    lines: list[int] | None = None,
    bad: dict[int, str] | None = None,
    manifest: ModelManifest | None = None,
) -> list[str]:
    """The texts of a .csv file's `field` column, else one text per non-blank line; with
    `records`, each CSV row's other cells are added to it; with `lines`, each text's line
    number (as `read_rows` counts them). A byte that is not UTF-8 refuses the file, or with
    `bad`, its row is noted there (by its index among the rows) as batch reports it, and left
    out of the texts. With `manifest` (explain's and baseline's), a CSV batch refuses for what
    it holds beside the texts (a `text_pair`, token ids) is refused by batch's check."""
    require_file(path)
    lenient = bad is not None
    if file_suffix(path) != ".csv":
        with utf8_text(path, lenient) as handle:
            every = LINE_BREAK.split(handle.read())  # not splitlines(): see LINE_BREAK
        if lenient and every and not_utf8_at(every[0]):  # another encoding (UTF-16's mark)
            raise BadRequest(not_utf8(path))
        numbered = [(n, t) for n, t in enumerate(every, 1) if t.strip()]
        if lines is not None:
            lines.extend(n for n, _ in numbered)
        return _good([t for _, t in numbered], bad, "")
    cells = []
    with utf8_text(path, lenient) as handle:
        reader = csv_fields.dict_reader(handle)
        header = reader.fieldnames or []
        if lenient and any(not_utf8_at(name) for name in header):
            raise BadRequest(not_utf8(path))  # as batch fails a run whose header is not UTF-8
        if field not in header:
            raise BadRequest(_lacks_text(path, header, field, manifest))
        if manifest is not None:  # batch's check: a pair's first text, or a text beside its
            refuse_beside_text(list(header), manifest, str(path))  # ids, was read alone
        if repeated := csv_fields.named_twice(str(path), header, [field]):
            raise BadRequest(repeated)
        misshapen: dict[int, str] = {}
        for index, row in enumerate(reader):
            if records is not None:
                records.append(own_fields(row, [field]))
            if lines is not None:
                lines.append(first_line(reader.line_num, row))
            why = reader.misshapen()  # a comma too many read another cell as the text
            if why and bad is None:
                raise BadRequest(f"{path}: line {first_line(reader.line_num, row)}: {why}")
            if why:
                misshapen[index] = why
            cells.append(row[field])
    return _good(cells, bad, f"column {field!r} is ", misshapen)


def first_line(last: int, row: dict[Any, Any]) -> int:
    """The line a CSV record starts on, as batch's error files number it (csv's `line_num` is
    the line it ends on: a text quoted over three lines was reported two lines late): the
    line breaks inside its quoted cells taken off."""
    cells = [c for v in row.values() for c in (v if isinstance(v, list) else [v])]
    return last - sum(c.count("\n") for c in cells if isinstance(c, str))


def _good(
    texts: list[str], bad: dict[int, str] | None, where: str, refused: dict[int, str] | None = None
) -> list[str]:
    """`texts` less those not UTF-8 and those `refused` already, noted in `bad` (`where`: a
    CSV's column, whose byte count starts at the cell)."""
    if bad is None:
        return texts
    good = []
    for index, text in enumerate(texts):
        if refused and index in refused:
            bad[index] = refused[index]
            continue
        why = not_utf8_at(text)
        if why is None:
            good.append(text)
        else:
            bad[index] = where + why
    return good
