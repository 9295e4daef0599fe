"""Reading a job's data: local or `s3://` CSV, NPZ and Parquet, bundled and generated sets.

`dataset.path` forms: `bundled:digits.npz` (shipped in training/data), `generated:waveforms`
(see training.generated), `s3://bucket/key.csv`, or a local path (relative to the working
directory, else to the spec file). Every problem is a `DataError` that names the column/key,
the row and the spec field to fix, raised before any training starts. `limit` reads only the
first rows (what `aiaas train --check` judges); `RawData.complete` says whether that was all.
A CSV row is named by its line in the file (the header is line 1), as batch reports name it;
other rows by their index from 0.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from functions.runtime.csv_fields import missing_header_question
from functions.runtime.errors import AiaasError
from training.cells import (
    ROW_INDEX,
    RowPlaces,
    as_number,
    decimal_comma,
    first_text,
    is_missing,
    numeric_column,
)
from training.csv_table import gzipped, read_csv
from training.errors import DataError
from training.generated import generate
from training.npz_data import MAX_MISSING_SHARE, array_names, read_npz
from training.spec import DatasetSpec
from training.text import text_column

BUNDLED_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class RawData:
    """Features and target as read, before splits: x is numeric (or str objects for text).

    Table columns stay float64 until `prepare` (so a large integer id is still unique here);
    arrays keep float32. `target_noun` is how messages name the target: "column" or "array".
    """

    x: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    target_name: str
    source: str
    complete: bool = True
    target_noun: str = "column"
    places: RowPlaces = ROW_INDEX
    # An array's positions named here (x0, x1, ...), not a table's columns: callers cannot
    # send them by name. A table's columns are kept whatever they are called (f0, f1, ...).
    generated_names: bool = False
    # A table's feature columns that hold text (categories, one-hot encoded by training);
    # x is then an object array. Numeric columns hold NaN for a missing cell.
    text_columns: tuple[int, ...] = ()
    # The file as read (a whole read only): what `sha256sum FILE` prints, and its size. The
    # manifest's fingerprint is of the encoded arrays, blind to column names, categories
    # and class names, so it cannot tell an auditor which file a version learned from.
    file_sha256: str | None = None
    file_bytes: int | None = None


def load_raw(
    spec: DatasetSpec, kind: str, spec_dir: Path | None = None, *, limit: int | None = None
) -> RawData:
    """Read the data set `spec` names; `kind` is the recipe's input kind (text reads strings).

    With `limit`, only the first `limit` rows are read (`complete` is False if there were more).
    """
    if spec.path.startswith("generated:"):
        x, y = generate(spec.path.removeprefix("generated:"))
        raw = RawData(x, y, array_names(x), "y", spec.path, target_noun="array")
        return _head(dataclasses.replace(raw, generated_names=True), limit)
    with _local_copy(spec.path, spec_dir) as path:
        raw = _read_file(path, spec, kind, limit)
        if limit is not None:  # `--check`'s sample: no hash of a file it does not read whole
            return raw
        digest, size = file_digest(path)
        return dataclasses.replace(raw, file_sha256=digest, file_bytes=size)


def _read_file(path: Path, spec: DatasetSpec, kind: str, limit: int | None) -> RawData:
    fmt = spec.format if spec.format != "auto" else _format_of(path)
    if fmt == "npz":
        return _head(_from_npz(path, spec), limit)
    if fmt == "csv":
        columns, complete, lines = read_csv(path, limit)
        places = RowPlaces(path.name, lines)
    else:
        (columns, complete), places = _read_parquet(path, limit), RowPlaces(path.name)
    return _from_columns(columns, spec, kind, spec.path, complete, places)


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 and size of the data file as read (the local copy of an s3:// one)."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _head(raw: RawData, limit: int | None) -> RawData:
    if limit is None or len(raw.y) <= limit:
        return raw
    return dataclasses.replace(raw, x=raw.x[:limit], y=raw.y[:limit], complete=False)


def _format_of(path: Path) -> str:
    formats = {".csv": "csv", ".npz": "npz", ".parquet": "parquet", ".pq": "parquet"}
    if path.suffix.lower() == ".gz":  # was "cannot tell the format of data.csv.gz"
        raise DataError(gzipped(path))
    if path.suffix.lower() not in formats:
        raise DataError(
            f"cannot tell the format of {path.name}; set dataset.format to csv, npz or parquet"
        )
    return formats[path.suffix.lower()]


@contextlib.contextmanager
def _local_copy(path: str, spec_dir: Path | None) -> Iterator[Path]:
    if path.startswith("s3://"):
        with tempfile.TemporaryDirectory(prefix="aiaas-data-") as tmp:
            yield _download(path, Path(tmp))
        return
    if path.startswith("bundled:"):
        local = BUNDLED_DIR / path.removeprefix("bundled:")
        if not local.is_file() or ".." in path:
            available = sorted(p.name for p in BUNDLED_DIR.iterdir() if p.is_file())
            raise DataError(f"no bundled data set {path!r}; bundled: {available}")
        yield local
        return
    candidates = [Path(path)] + ([spec_dir / path] if spec_dir else [])
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        folder = next((c for c in candidates if c.is_dir()), None)
        if folder is not None:  # it was "not found", though it is there
            raise DataError(
                f"spec field 'dataset.path': {folder} is a directory; training reads one CSV, "
                "NPZ or Parquet file (images: one .npz with x [N, C, H, W] and y)"
            )
        raise DataError(
            f"spec field 'dataset.path': data set file {path} not found{_where(path, spec_dir)}"
        )
    yield found


def _where(path: str, spec_dir: Path | None) -> str:
    if Path(path).is_absolute():
        return ""
    beside = f" or beside the spec ({spec_dir})" if spec_dir else ""
    return f" in the working directory ({Path.cwd()}){beside}"


def _download(uri: str, tmp: Path) -> Path:
    from functions.runtime.s3store import S3Store

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise DataError(f"data set URI {uri!r} must be s3://bucket/key")
    dest = tmp / Path(key).name
    try:
        S3Store(bucket).download_file(key, dest)
    except AiaasError as exc:
        raise DataError(f"cannot read data set {uri}: {exc.message}") from exc
    return dest


def _read_parquet(path: Path, limit: int | None) -> tuple[dict[str, np.ndarray], bool]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            f"reading {path.name} needs pyarrow: pip install 'aiaas[parquet]'"
        ) from None
    try:
        file = pq.ParquetFile(path)
        if limit is None or file.metadata.num_rows <= limit:
            table = file.read()
        else:
            table = pa.Table.from_batches([next(file.iter_batches(batch_size=limit))])
    except (pa.ArrowException, OSError) as exc:  # a CSV named .parquet, a file cut short
        raise DataError(f"{path.name} is not a Parquet file pyarrow can read: {exc}") from None
    columns = {name: _numpy(table.column(name)) for name in table.column_names}
    return columns, table.num_rows == file.metadata.num_rows


def _numpy(column: Any) -> np.ndarray:
    """A Parquet column as numpy, its nulls kept. A dictionary column (pandas' `category`)
    went through its indices: each null became the category its slot pointed at (74 gaps
    read as 'mid', a label's 30 gaps as a class)."""
    import pyarrow as pa

    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    kind = column.type
    values = column.to_numpy(zero_copy_only=False)
    if pa.types.is_boolean(kind):
        # A category, as the same column in a CSV is (pandas writes True/False): as a number it
        # trained on 0/1 that no raw row sends, and every served True was refused.
        return np.array([None if v is None else str(v) for v in values], dtype=object)
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return _dates_as_text(values, utc=bool(getattr(kind, "tz", None)))
    return values  # type: ignore[no-any-return]


def _dates_as_text(values: np.ndarray, *, utc: bool) -> np.ndarray:
    """A Parquet date or timestamp column as the text pandas writes for it in a CSV (what raw
    rows then send): `2024-01-02` when every value is a midnight, else `2024-01-02 10:30:00`
    (with microseconds when any has them); a timezone-aware column in UTC, `+00:00`. Numpy's
    own text, `2024-01-02T00:00:00.000000`, matched no row a client sent."""
    present = ~np.isnat(values)
    days = values.astype("datetime64[D]")
    unit: Literal["D", "s", "us"] = "us"
    if (values[present] == days[present]).all():
        unit = "D"
    elif (values[present] == values[present].astype("datetime64[s]")).all():
        unit = "s"
    text = np.datetime_as_string(values.astype("datetime64[us]"), unit=unit)
    suffix = "+00:00" if utc and unit != "D" else ""
    cells = zip(text, present, strict=True)
    return np.array([str(t).replace("T", " ") + suffix if ok else None for t, ok in cells], object)


def _from_npz(path: Path, spec: DatasetSpec) -> RawData:
    x, y, names, y_key = read_npz(path, spec)
    return RawData(x, y, names, y_key, spec.path, target_noun="array", generated_names=True)


def _from_columns(
    columns: dict[str, np.ndarray],
    spec: DatasetSpec,
    kind: str,
    source: str,
    complete: bool,
    places: RowPlaces,
) -> RawData:
    target = spec.target
    if target is None:
        raise DataError(f"set dataset.target to the label column; columns are {list(columns)}")
    inputs = _inputs(columns, spec, kind, source, csv=places.lines is not None)
    text: tuple[int, ...] = ()
    if kind == "text":
        x = text_column(columns[inputs[0]], inputs[0], places)
    else:
        x, text = _features(columns, inputs, places)
    return RawData(
        x, columns[target], inputs, target, source, complete, places=places, text_columns=text
    )


def _features(
    columns: dict[str, np.ndarray], inputs: tuple[str, ...], places: RowPlaces
) -> tuple[np.ndarray, tuple[int, ...]]:
    """The feature rows and which columns hold text (categories): float64 rows with NaN for a
    gap, or with a text column an object array (its strings beside the other columns' floats)."""
    text = tuple(i for i, n in enumerate(inputs) if _holds_text(columns[n]))
    numbers = {i: _feature(columns[n], n, places) for i, n in enumerate(inputs) if i not in text}
    if not text:
        return np.stack([numbers[i] for i in range(len(inputs))], axis=1), ()
    x = np.empty((len(columns[inputs[0]]), len(inputs)), dtype=object)
    for i, name in enumerate(inputs):
        x[:, i] = [_category(v) for v in columns[name]] if i in text else numbers[i]
    return x, text


def _category(cell: object) -> str:
    """A text column's cell as serving reads it: a null (Parquet's None, a NaN) is the empty
    string, as an empty CSV cell is (not the category "None"); written text is itself, less
    the blanks around it, as a header name and a label are read. A file written `70, Lyon`
    trained the category ' Lyon', and a client's "Lyon" was then none of them (all zeros, a
    confident wrong answer); the served model strips its string inputs alike (`strip`)."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return ""
    return str(cell).strip()


def _inputs(
    columns: dict[str, np.ndarray], spec: DatasetSpec, kind: str, source: str, *, csv: bool
) -> tuple[str, ...]:
    """The input columns, each one checked to exist, with the spec field that named it."""
    named = [(name, "dataset.exclude") for name in spec.exclude]
    named.append((str(spec.target), "dataset.target"))
    if kind == "text" and spec.text_column is not None:
        inputs: tuple[str, ...] = (spec.text_column,)
        named.append((spec.text_column, "dataset.text_column"))
    else:
        dropped = {spec.target, *spec.exclude}
        inputs = spec.features or tuple(name for name in columns if name not in dropped)
        named.extend((name, "dataset.features") for name in spec.features or ())
    for name, field in named:
        if name not in columns:
            asked = missing_header_question(list(columns)) if csv else ""
            raise DataError(
                f"spec field '{field}': data set {source} has no column {name!r}; "
                f"columns are {list(columns)}{asked}"
            )
    if not inputs:
        raise DataError(f"spec field 'dataset.exclude' leaves no feature columns in {source}")
    if "" in inputs:  # a caller could not send it by name, nor a card show it
        raise DataError(_nameless(columns, source, csv))
    # Not where dataset.features names it: the spec's own choice, which the refusal suggests.
    if not spec.features and (index := [n for n in inputs if PANDAS_INDEX.fullmatch(n)]):
        raise DataError(_pandas_index(index, source))
    return inputs


# The column `to_parquet()` stores a frame's unnamed index in (pandas' read_parquet makes it the
# index again): a shuffled, filtered or train_test_split frame's row labels. Trained on as a
# feature, without a word when not in order, and then demanded of every caller.
PANDAS_INDEX = re.compile(r"__index_level_\d+__")


def _pandas_index(names: list[str], source: str) -> str:
    listed = ", ".join(repr(n) for n in names)
    return (
        f"data set {source} holds pandas' index as column {listed} (to_parquet keeps a "
        "frame's index unless index=False: a shuffled, filtered or split frame's row labels, "
        "no feature); write it with to_parquet(index=False), add it to dataset.exclude, or "
        "list the feature columns in dataset.features"
    )


def _nameless(columns: dict[str, np.ndarray], source: str, csv: bool) -> str:
    """Why a column has no name: pandas' index (the first), a comma ending every line (the
    last, empty in every row: it was blamed on pandas' index), or a name left out."""
    names = list(columns)
    at = names.index("")
    if at == 0:
        why = "pandas writes its index so unless to_csv(index=False)); name it in the header"
    elif csv and at == len(names) - 1 and all(_category(v) == "" for v in columns[""]):
        why = (
            "the last, empty in every row: a comma ends every line, the header's too); delete "
            "the comma at the end of each line"
        )
    else:
        why = "its name is empty in the header); name it in the header"
    return (
        f"data set {source} has a column with no name (column {at + 1}; {why}, or list the "
        "feature columns in dataset.features"
    )


def _holds_text(values: np.ndarray) -> bool:
    """A column of words: most of its cells that are not missing are no numbers (a decimal
    comma is a number written otherwise, and a stray word in numbers a typo: their own
    messages)."""
    found = first_text(values)
    if found is None or decimal_comma(found[1]):
        return False
    present = words = 0
    for cell in values:
        if is_missing(cell):
            continue
        present += 1
        try:
            as_number(cell)
        except (TypeError, ValueError):
            words += 1
    return 2 * words > present


def _feature(values: np.ndarray, name: str, places: RowPlaces) -> np.ndarray:
    fix = "; drop it with dataset.exclude or list the numeric columns in dataset.features"
    gaps = (
        "; training fills gaps only in columns missing under half their values: fill more in, "
        "or drop the column with dataset.exclude"
    )
    return numeric_column(
        values, name, role="feature column", fix=fix, gaps=gaps, places=places,
        max_missing=MAX_MISSING_SHARE,
    )  # fmt: skip
