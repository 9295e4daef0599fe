"""The CSV header record: how its columns map to a model's inputs, checked once per input.

Columns map to inputs by name: an input `x` of shape [-1] or [-1, 1] reads column `x`; an
input of shape [-1, F] reads `x_0` ... `x_{F-1}` (row-major for higher ranks), or, for a model
with feature names, the columns so named (the training file itself scores as it is). Other
columns (ids, ground truth) are passed through untouched, and the output gains `pred_*` columns.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass
from difflib import get_close_matches

from functions.runtime import csv_fields
from functions.runtime.batch.cells import PREFIX, column_names, csv_quote
from functions.runtime.batch.scoring import OutputField, output_fields, row_shape
from functions.runtime.column_names import collision, column_for
from functions.runtime.errors import BadRequest
from functions.runtime.hf_tokenizer import KIND as HF_TOKENIZER
from functions.runtime.input_columns import flat_columns, indexed_names
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.text_input import (
    PAIR_FIELD,
    filled_beside_text,
    filled_inputs,
    sent_beside_text,
    text_and_ids,
    text_input,
)

SHOWN = 6  # column names quoted in an error message
BOM = b"\xef\xbb\xbf"  # UTF-8's byte order mark


class HeaderMismatch(BadRequest):
    """The CSV header does not name the columns the model reads."""


def expected_columns(manifest: ModelManifest, spec: TensorSpec) -> list[str]:
    """The CSV columns `manifest`'s input `spec` is read from."""
    return list(indexed_names(spec.name, math.prod(row_shape(manifest, spec))))


def _header_text(header: bytes, where: str) -> str:
    """The header as UTF-8 (a byte order mark dropped), or a 400 naming the file's encoding:
    a UTF-16 file (Excel's "Unicode text") used to be refused for lacking every column."""
    utf16 = header.startswith((b"\xff\xfe", b"\xfe\xff"))  # with a byte order mark: below
    if not utf16 and header.count(b"\x00") * 3 > len(header):  # ASCII in UTF-16: NUL, byte, ...
        raise HeaderMismatch(
            f"{where}: the header line is UTF-16 text without a byte order mark (a NUL byte "
            'every other byte); batch reads UTF-8 CSV: save the file as UTF-8 ("CSV UTF-8" '
            "in Excel, encoding='utf-8' in pandas)"
        )
    if header.lower().startswith(b"sep="):
        raise HeaderMismatch(
            f"{where}: the first line is Excel's separator hint ({header[:6].decode('ascii', 'replace')}"
            "), not the header: delete that line; batch reads the header from the first line"
        )
    try:
        return header.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if header.startswith((b"\xff\xfe", b"\xfe\xff")):
            found = "is UTF-16 text (it starts with a UTF-16 byte order mark)"
        else:
            found = f"is not UTF-8 text (byte {header[exc.start]:#04x} at offset {exc.start})"
        raise HeaderMismatch(
            f"{where}: the header line {found}; batch reads UTF-8 CSV: save the file as "
            'UTF-8 ("CSV UTF-8" in Excel)'
        ) from None


def _shown(names: list[str]) -> str:
    extra = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + extra


@dataclass(frozen=True)
class CsvLayout:
    """How a header maps to the model's inputs."""

    header: str
    columns: tuple[str, ...]
    indices: dict[str, list[int]]  # input name -> its columns' positions in a parsed row
    usecols: list[int] | None  # columns to parse, None when every column is an input column
    numeric: bool  # every input is numeric: the fast parser applies
    bom: bool = False  # the input began with UTF-8's byte order mark: so does the output

    def header_line(self, fields: list[OutputField]) -> bytes:
        """The input's header with a column per prediction value, each name quoted as a CSV
        cell: an output named `out,put "q"` went out bare and shifted every column after it.
        An input's byte order mark is written back: Excel saves "CSV UTF-8" with one and opens
        a CSV without one in the system's code page (the output's `Zürich` read `ZÃ¼rich`)."""
        added = [csv_quote(name) for field in fields for name in column_names(field)]
        return (BOM if self.bom else b"") + (",".join([self.header, *added]) + "\n").encode()

    def written(self, record: bytes) -> dict[str, list[str]]:
        """Input name -> the cells a parsed record holds for it, as the file wrote them: a
        refused row's reason quotes these (its float, 9007199254740993 read as ...992, is not
        in the file). Only for refused rows: each is parsed again."""
        fields = next(csv_fields.reader([record.decode()]), [])
        columns = self.usecols or range(len(self.columns))
        return {n: [fields[columns[c]].strip() for c in cols] for n, cols in self.indices.items()}


def csv_layout(header: bytes, manifest: ModelManifest, where: str) -> CsvLayout:
    """Match the header record (a quoted name may hold a line break) against the model's
    inputs, or raise HeaderMismatch."""
    text = _header_text(header, where)
    if "\r" in text.rstrip("\r").replace("\r\n", "\n"):  # CRLF within a quoted name: a line break
        raise HeaderMismatch(
            f"{where}: lines end in a bare carriage return (CR), which batch does not read; "
            "save the file with LF or CRLF line endings"
        )
    try:
        columns = [name.strip() for name in next(csv_fields.reader([text]), [])]
    except csv.Error as exc:
        raise HeaderMismatch(f"{where}: the header line is not valid CSV: {exc}") from None
    if not any(columns):
        raise HeaderMismatch(f"{where}: the first line must be a header naming the columns")
    # Counted once: list.count per column took 196 s for a 2 MB header of 300,000 columns.
    twice = sorted(c for c, times in Counter(columns).items() if times > 1)
    if twice and _looks_numeric(columns):
        raise HeaderMismatch(
            f"{where}: the header names columns twice: {_named(twice)} (is the header line "
            "missing?)"
        )
    taken = [c for c in columns if c.startswith(PREFIX)]
    if taken:
        raise HeaderMismatch(
            f"{where}: columns starting with {PREFIX!r} are where predictions go; rename "
            f"{_shown(taken)}"
        )
    refuse_beside_text(columns, manifest, where)
    _refuse_added_twice(manifest, where)
    position = {name: i for i, name in enumerate(columns)}
    wanted = {spec.name: expected_columns(manifest, spec) for spec in manifest.inputs}
    _refuse_shared(wanted, manifest, where)
    renamed = column_for({c for cols in wanted.values() for c in cols}, columns)
    position.update({key: position[column] for key, column in renamed.items()})
    # Columns the model reads must be named once; others are passed through as they are (an
    # export's two `id` columns, or two unnamed ones of trailing commas, refused the file).
    read = {c for cols in wanted.values() for c in cols} | set(renamed.values())
    flat = flat_columns(manifest)  # a table reshaped into the one input: its own columns
    read |= set(manifest.features) | set(flat)
    if any(c in read for c in twice):
        raise HeaderMismatch(
            f"{where}: the header names columns twice: {_named([c for c in twice if c in read])}"
        )
    by_name = manifest.feature_input
    if by_name is not None and _by_features(wanted[by_name.name], manifest.features, position):
        wanted[by_name.name] = list(manifest.features)  # the error, if any, names features
    own = manifest.inputs[0].name
    if flat and _by_features(wanted[own], flat, position):
        wanted[own] = list(flat)  # read in training's order, then reshaped as the input is
    missing = [c for names in wanted.values() for c in names if c not in position]
    if missing:
        inputs = [spec.name for spec in manifest.inputs]
        collided = collision(inputs, columns, "name each column after its input")
        read = {c for names in wanted.values() for c in names}
        hint = header_hint(columns) or _case_hint(missing, columns)
        hint = hint or (f" ({collided})" if collided else "") or texts_hint(manifest, columns)
        spare = [c for c in columns if c and c not in read]
        hint = hint or _near_hint(missing, spare)
        if len(missing) < len(read):  # some found: a rename, not another naming of them all
            hint = hint or _spare_hint(spare)
        raise HeaderMismatch(
            f"{where}: the header lacks column(s) {_shown(missing)}{hint}; model "
            f"{manifest.name}:{manifest.version} reads "
            + "; ".join(f"{name}: {_shown(cols)}" for name, cols in wanted.items())
            + ("" if hint.startswith(_NO_HEADER) else _unnamed_hint(columns, manifest, wanted))
        )
    used = sorted(position[c] for names in wanted.values() for c in names)
    every = len(used) == len(columns)
    slot = {col: i for i, col in enumerate(used)}
    return CsvLayout(
        header=text.rstrip("\r"),
        columns=tuple(columns),
        indices={n: [slot[position[c]] for c in cols] for n, cols in wanted.items()},
        usecols=None if every else used,
        numeric=all(spec.dtype != "string" for spec in manifest.inputs),
        bom=header.startswith(BOM),
    )


def _by_features(own: list[str], features: tuple[str, ...], position: dict[str, int]) -> bool:
    """Whether the feature input reads the columns its feature names name, by the rule the
    predict API and JSONL records follow (`by_feature`): every feature is there, or the input's
    own `x_*` columns are not all there (the error then names the features). A header with
    both complete sets scored `x_*` here and the features in JSONL: one row, two answers."""
    return all(c in position for c in features) or not all(c in position for c in own)


def _refuse_shared(wanted: dict[str, list[str]], manifest: ModelManifest, where: str) -> None:
    """One column two inputs read (`input_1`: element 1 of input `input` and input `input_1`,
    as Keras names them) was fed to both, a made-up row scored: no CSV can say both values."""
    owner: dict[str, str] = {}
    for name, cols in wanted.items():
        for index, column in enumerate(cols):
            if column in owner:
                first = owner[column]
                raise HeaderMismatch(
                    f"{where}: model {manifest.name}:{manifest.version} reads column "
                    f"{column!r} as {first} and as {_as_part(name, cols, index)}, which one CSV "
                    "column cannot be: score it from JSONL (one object a row, a field an input)"
                )
            owner[column] = _as_part(name, cols, index)


def _refuse_added_twice(manifest: ModelManifest, where: str) -> None:
    """Two outputs whose prediction columns share a name (`a` [N, 2] and `a_1` [N, 1], as
    tf2onnx names Keras heads `dense`, `dense_1`): the output named `pred_a_1` twice, and
    readers took one for the other (pandas' `pred_a_1.1`; csv.DictReader keeps the last)."""
    owner: dict[str, str] = {}
    for field in output_fields(manifest):
        names = column_names(field)
        for index, column in enumerate(names):
            part = (
                f"output {field.name!r}" if len(names) == 1 else f"value {index} of {field.name!r}"
            )
            if column in owner:
                raise HeaderMismatch(
                    f"{where}: model {manifest.name}:{manifest.version} would write {owner[column]} "
                    f"and {part} both as the column {column!r}, which one CSV header cannot tell "
                    "apart: score it from JSONL (a field an output), or NPY for a single-input "
                    "model (an array an output)"
                )
            owner[column] = part


def _as_part(name: str, cols: list[str], index: int) -> str:
    return f"input '{name}'" if len(cols) == 1 else f"element {index} of input '{name}'"


def _named(columns: list[str]) -> str:
    """Column names as a message shows them: an empty one as ''."""
    return _shown([c or "''" for c in columns])


def refuse_beside_text(columns: list[str], manifest: ModelManifest, where: str) -> None:
    """A text model scores one text a row: a file of pairs is refused, its second text never
    dropped; so is one of token ids (or their mask) beside its texts. Batch's check, and
    `aiaas explain --file` and `aiaas baseline`'s of a CSV (infra/cli/csv_rows.read_texts)."""
    text = text_input(manifest)
    if text is not None and PAIR_FIELD in columns and manifest.inputs[0].name != PAIR_FIELD:
        raise HeaderMismatch(
            f"{where}: the column {PAIR_FIELD!r} holds the second texts of pairs; model "
            f"{manifest.name}:{manifest.version} reads one text a row (column "
            f"{text.field!r}), not pairs of texts"
        )
    if text is None or text.field not in columns:
        return
    # Token ids, a mask or type ids beside the text: the online API refuses them together;
    # every row was scored from its text and the ids passed over unsaid.
    sent = sent_beside_text(columns, text, filled_inputs(manifest))
    if sent == text.input:
        raise HeaderMismatch(text_and_ids(f"{where}: the header", text, batch=True))
    if sent is not None:
        raise HeaderMismatch(filled_beside_text(f"{where}: the header", sent, batch=True))


_NO_HEADER = " (is the header line missing?"


def texts_hint(manifest: ModelManifest, columns: list[str]) -> str:
    """A model of text columns alone (a scikit-learn TF-IDF pipeline's `text` [N, 1]) given a
    file of texts without a header: its first text was the header, and the error said to
    publish a version with `--features refund please`. Asked where a cell reads as words
    (`refund please`), not as a column's name (`body`, which a tokenizer's model names)."""
    if not all(spec.dtype == "string" for spec in manifest.inputs) or len(columns) != len(
        manifest.inputs
    ):
        return ""
    if text_input(manifest) is not None or not any(len(cell.split()) > 1 for cell in columns):
        return ""
    first = ",".join(columns)
    return f"{_NO_HEADER} its first line, {first!r}, was read as the header)"


def _unnamed_hint(columns: list[str], manifest: ModelManifest, wanted: dict[str, list[str]]) -> str:
    """A model published without --features reads x_0, x_1, ...: a header of the user's own
    names (feature names, maybe a label beside them) says nothing the model can match."""
    text = text_input(manifest)
    if text is not None:  # --features is refused for a text model: its field is the column
        return _text_hint(columns, manifest, text.field)
    expected = [c for cols in wanted.values() for c in cols]
    if manifest.features or flat_columns(manifest):
        return ""
    if (
        len(columns) < len(expected)
        or set(columns) & set(expected)
        or csv_fields.row_of_data(columns)
    ):
        return ""
    if len(manifest.inputs) != 1:  # --features names one [N, F] input's columns: refused here
        return ""
    if manifest.inputs[0].rank > 2:  # --features needs [N, F]
        return (
            f" (its input {manifest.inputs[0].name!r} is {list(manifest.inputs[0].shape)}, "
            f"read row-major from columns {expected[0]} ... {expected[-1]}: rename the header's "
            "columns it reads so, in order)"
        )
    names = ",".join(columns) if len(columns) == len(expected) else "NAME,..."
    return (
        " (it was published without --features: rename the header's columns it reads so, in "
        f"order, or publish a version with --features {names})"
    )


def _text_hint(columns: list[str], manifest: ModelManifest, field: str) -> str:
    """A text model reads its texts from one column, its text field: a user's own column name
    is renamed, or (a tokenizer.json model) named at publish by --text-field."""
    own = manifest.preprocessing.get("tokenizer") == HF_TOKENIZER
    name = columns[0] if len(columns) == 1 and columns[0] else "NAME"
    return (
        f" (it reads one text a row from column {field!r}: rename the column that holds the "
        f"texts to {field}"
        + (f", or publish a version with --text-field {name}" if own else "")
        + ")"
    )


def header_hint(columns: list[str]) -> str:
    """Why a header may lack every column: no header line, Excel's `sep=` line (where batch
    refused it already; the CLI's readers read it as the header), or another delimiter."""
    if asked := csv_fields.missing_header_question(columns):  # (an empty file has none)
        return asked
    if 1 <= len(columns) <= 2 and columns[0].lower().startswith("sep="):
        return " (the first line is Excel's separator hint, not the header: delete that line)"
    if len(columns) == 1:
        found = [sep for sep in (";", "\t", "|") if sep in columns[0]]
        if found:
            return f" (the header is one column; is the file {found[0]!r}-separated? save it comma-separated)"
    return ""


def _case_hint(missing: list[str], columns: list[str]) -> str:
    """The header's columns that are missing ones in another case (an export that capitalises
    its header): the bare list of missing names contradicted what the user sees."""
    folded = {name.casefold(): name for name in missing}
    other = [column for column in columns if column.casefold() in folded]
    if not other:
        return ""
    return f" (the header has {_shown(other)}: names must match in case too)"


def _near_hint(missing: list[str], spare: list[str]) -> str:
    """The header's columns the model does not read that look like missing ones renamed
    (`sq_ft` for `sqft`, the next night's export): the bare list of missing names left the
    user to find which (hunt_journey5 4)."""
    if len(missing) > 5 or len(spare) > 10_000:  # a few renames; bounded on a wide header
        return ""
    pairs = [(close[0], name) for name in missing if (close := get_close_matches(name, spare, 1))]
    if not pairs:
        return ""
    said = ", ".join(f"{column!r} for {name!r}" for column, name in pairs)
    return f" (the header has {said}: renamed? rename it back)"


def _spare_hint(spare: list[str]) -> str:
    """The header's columns the model does not read, when none looks like a missing one: a
    rename to another word (`income` to `salary`) was said as the missing name alone, and the
    user searched the header for what it became."""
    if not spare or len(spare) > SHOWN:  # a wide export's many others would bury it
        return ""
    return f" (the header's other columns, which it does not read: {_named(spare)})"


def _looks_numeric(columns: list[str]) -> bool:
    return all(csv_fields.is_number(c) for c in columns)
