"""Where batch objects live in the store, and which run an input object belongs to.

    batch/<model>/input/<file>                  dropped by users (CSV, JSONL, NPY; CSV and JSONL
                                                may be gzip-compressed: .csv.gz, .jsonl.gz)
    batch/<model>/output/<file>                 scored rows, same format (NPY becomes .npz, and
                                                a .gz input's output is not compressed)
    batch/<model>/output/<file>.errors.jsonl    rows that could not be scored, with the reason
    batch/<model>/output/<file>.summary.json    written last: a run is finished once it exists
    batch/<model>/work/<run id>/...             shard parts of a Distributed Map run

`<file>` may contain '/' (sub-folders of input/ are mirrored under output/). Keys are store keys:
an S3 store with a prefix keeps them under `<prefix>/batch/...`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from functions.runtime import names
from functions.runtime.errors import BadRequest, InvalidName

BATCH_PREFIX = "batch"
INPUT_DIR = "input"
OUTPUT_DIR = "output"
WORK_DIR = "work"

# Input extension -> format; the scored output keeps the extension except NPY (arrays go in .npz).
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".npy": "npy"}
COMPRESSED = ".gz"  # gzip, for the text formats
ERRORS_SUFFIX = ".errors.jsonl"  # a run's rejected rows: output/<file>.errors.jsonl
SUMMARY_SUFFIX = ".summary.json"  # a run's commit point: output/<file>.summary.json
# Encoded images: no rows, whatever their name (a PNG renamed .npy is no array either).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
SUPPORTED = ", ".join([*sorted(FORMATS), ".csv.gz", ".jsonl.gz", ".ndjson.gz"])
# Table files a data pipeline writes that batch does not read (pyarrow is no function's
# dependency): renaming one does not convert it, so the refusal says how (pandas' reader).
TABLES = {
    ".parquet": ("Parquet", "read_parquet"),
    ".feather": ("Feather", "read_feather"),
    ".xlsx": ("Excel", "read_excel"),
    ".xls": ("Excel", "read_excel"),
}


class UnsupportedFormat(BadRequest):
    """The input's extension names no format batch scoring reads."""


class NameTooLong(InvalidName):
    """A job file name within the rule whose keys the store cannot hold (`check_room`)."""


class OutputShared(BadRequest):
    """Another input scores into the same output key (`rows.csv` and `rows.csv.gz`)."""


class ReportName(OutputShared):
    """An input named like another input's report (`rows.csv.errors.jsonl`): its output key
    is that report, which neither its scores nor its failure may replace or remove."""


@dataclass(frozen=True)
class BatchObject:
    """One input object and the keys its run writes."""

    model: str
    input_key: str
    file: str  # the path below `input/`

    @property
    def compressed(self) -> bool:
        """A gzip-compressed text input (`rows.csv.gz`)."""
        return self.file.lower().endswith(COMPRESSED)

    @property
    def _plain_file(self) -> str:
        return self.file[: -len(COMPRESSED)] if self.compressed else self.file

    @property
    def extension(self) -> str:
        """The format's extension, `.gz` aside: `.csv` for `rows.csv.gz`."""
        plain = self._plain_file
        dot = plain.rfind(".")
        return plain[dot:].lower() if dot > plain.rfind("/") else ""

    @property
    def format(self) -> str:
        if self._plain_file.lower().endswith(ERRORS_SUFFIX):
            # `rows.csv.errors.jsonl` scores into output/rows.csv.errors.jsonl: rows.csv's
            # rejected rows, lost when written over (case aside: some file systems ignore it).
            raise ReportName(
                f"{self.input_key}: a name ending in {ERRORS_SUFFIX!r} is where another "
                "input's rejected rows are written; rename it (e.g. to end in '-errors.jsonl')"
            )
        found = FORMATS.get(self.extension)
        if found is None or (self.compressed and found == "npy"):
            shown = (self.extension + COMPRESSED) if self.compressed else self.extension
            table = TABLES.get(shown)
            if table is not None:
                name = self.file.rsplit("/", 1)[-1]
                csv = name[: -len(shown)] + ".csv"
                raise UnsupportedFormat(
                    f"{self.input_key}: unsupported input format {shown!r}; batch reads "
                    f"{SUPPORTED}, and renaming does not convert a {table[0]} file: write it as "
                    f"CSV and upload that (pandas: pd.{table[1]}({name!r}).to_csv({csv!r}, "
                    "index=False))"
                )
            if shown == ".npz":
                name = self.file.rsplit("/", 1)[-1]
                npy = name[: -len(shown)] + ".npy"
                raise UnsupportedFormat(
                    f"{self.input_key}: unsupported input format {shown!r}; batch reads "
                    f"{SUPPORTED}, and an .npz holds several arrays (publish --data reads one "
                    f"so): for a model of one input save its array as .npy (numpy: np.save("
                    f"{npy!r}, np.load({name!r})['x'])); for one of several, or with labels, "
                    "write the rows as JSONL, one object a row, a field an input"
                )
            if shown in IMAGE_SUFFIXES:  # was told to rename it, which makes no rows of it
                name = self.file.rsplit("/", 1)[-1]
                npy = name[: -len(shown)] + ".npy"
                raise UnsupportedFormat(
                    f"{self.input_key}: unsupported input format {shown!r}; batch reads "
                    f"{SUPPORTED}, and an image file is no rows: decode the images into an "
                    "array as the model takes them and save that as .npy (numpy and Pillow: "
                    f"np.save({npy!r}, np.stack([np.asarray(PIL.Image.open(f)) for f in files])))"
                )
            raise UnsupportedFormat(
                f"{self.input_key}: unsupported input format {shown or '(none)'!r}; "
                f"name the file with one of {SUPPORTED}"
            )
        return found

    @property
    def output_key(self) -> str:
        plain = self._plain_file
        scored = plain[: -len(".npy")] + ".npz" if self.extension == ".npy" else plain
        return f"{self._output_prefix}/{scored}"

    @property
    def errors_key(self) -> str:
        return f"{self._output_prefix}/{self.file}{ERRORS_SUFFIX}"

    @property
    def summary_key(self) -> str:
        return f"{self._output_prefix}/{self.file}{SUMMARY_SUFFIX}"

    @property
    def folder(self) -> str:
        """The input folder this file is in (its siblings may share its output key)."""
        return self.input_key.rsplit("/", 1)[0]

    def work_prefix(self, run_id: str) -> str:
        return f"{BATCH_PREFIX}/{self.model}/{WORK_DIR}/{run_id}"

    @property
    def _output_prefix(self) -> str:
        return f"{BATCH_PREFIX}/{self.model}/{OUTPUT_DIR}"


def check_room(obj: BatchObject, name_bytes: int | None) -> None:
    """NameTooLong when a key the run of `obj` writes has a part over the store's `name_bytes`
    (`ObjectStore.name_bytes`): on a directory store a 222-character name was taken (202) and
    its summary, `<name>.summary.json`, could never be written (pending for good); 243 and up,
    the input's own temp file failed (a 503)."""
    if name_bytes is None:
        return
    *folders, name = obj.file.split("/")
    added = max(len(ERRORS_SUFFIX), len(SUMMARY_SUFFIX))
    for folder in folders:
        if len(folder.encode()) > name_bytes:
            raise NameTooLong(
                f"job file name {names.shown(obj.file)} is too long for this store: its folder "
                f"{names.shown(folder)} has {len(folder.encode())} bytes (UTF-8), and the store "
                f"holds names of at most {name_bytes}; use a shorter name"
            )
    if len(name.encode()) + added > name_bytes:
        raise NameTooLong(
            f"job file name {names.shown(obj.file)} is too long for this store: its last part "
            f"has {len(name.encode())} bytes (UTF-8) and may have at most {name_bytes - added}, "
            f"as the run writes '<name>{SUMMARY_SUFFIX}' beside it and the store holds names of "
            f"at most {name_bytes} bytes; use a shorter name"
        )


def parse_input_key(key: str) -> BatchObject | None:
    """The batch object for `batch/<model>/input/<file>`; None for any other key (outputs too).

    Raises InvalidName when the model part is not a valid model name, or the key holds a
    control character, an empty, '.' or '..' part or one over 255 characters (S3 takes them;
    files cannot), or the
    file fails `names.job_file_name`: the control plane's job API takes the same names.
    """
    parts = key.split("/")
    if len(parts) < 4 or parts[0] != BATCH_PREFIX or parts[2] != INPUT_DIR:
        return None
    if parts[-1] == "":
        return None  # a folder marker (`input/day2/`); `day2//x.csv` or `./x.csv` is refused:
    names.store_key(key, "batch input key")  # S3 takes it, a file cannot (a NUL: a crash)
    file = names.job_file_name("/".join(parts[3:]))
    return BatchObject(model=names.model_name(parts[1]), input_key=key, file=file)


def listed_input(key: str) -> BatchObject | None:
    """`parse_input_key` for a key listed in a model's input folder: None for one it refuses
    (a NUL in an S3 key), which a listing passes over rather than fails on."""
    try:
        return parse_input_key(key)
    except InvalidName:
        return None


def output_twins(obj: BatchObject, siblings: Iterable[str]) -> list[str]:
    """The other input keys among `siblings` whose output key is `obj`'s: `rows.csv` and
    `rows.csv.gz` both write `rows.csv`, `a.npy` and `a.NPY` both `a.npz`. A sibling batch
    never scores (`a.npz` itself) writes nothing: it is no twin, or dropping one beside
    `a.npy` failed every later run of it."""
    twins = []
    for key in siblings:
        if key == obj.input_key or key.rsplit("/", 1)[0] != obj.folder:
            continue
        other = listed_input(key)
        if other is not None and other.output_key == obj.output_key and _scored(other):
            twins.append(key)
    return twins


def twin_names(obj: BatchObject) -> str:
    """What every name that may share `obj`'s output begins with: the name to its last dot
    (`rows.` for `rows.csv.gz`, `a.` for `a.NPY`), so a run lists those, not the whole folder
    of every input ever dropped (`ObjectStore.list_files`)."""
    name = obj.input_key.rsplit("/", 1)[-1]
    plain = name[: -len(COMPRESSED)] if obj.compressed else name
    return plain[: plain.rfind(".") + 1] if "." in plain else plain


def _scored(obj: BatchObject) -> bool:
    """Whether batch scores `obj` at all (a format it reads, not a report's name)."""
    try:
        _ = obj.format
    except BadRequest:
        return False
    return True


def input_key(model: str, file: str) -> str:
    """The store key an input named `file` gets for `model`."""
    return f"{BATCH_PREFIX}/{names.model_name(model)}/{INPUT_DIR}/{file}"


def run_id(bucket: str, key: str, etag: str) -> str:
    """The idempotency key of one version of one input: same bucket, key and ETag, same run."""
    digest = hashlib.sha256(f"{bucket}\n{key}\n{etag.strip(chr(34))}".encode())
    return digest.hexdigest()[:32]
