"""`aiaas explain` (why did the model say that?) and `aiaas baseline` (what to compare with).

Both run in this process on the store, through the same explain data plane the predict function
serves `/models/{name}/explain` with.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from functions.runtime.codecs.json_errors import not_json
from functions.runtime.errors import BadRequest, InvalidInput
from functions.runtime.explain.background import DEFAULT_CLUSTERS
from functions.runtime.explain.background import MAX_ROWS as MAX_CLUSTERS
from functions.runtime.explain.explainer import MAX_SAMPLES, Explainer, check_samples, grouping
from functions.runtime.explain.patches import declared_window
from functions.runtime.image_layout import any_size_layout
from functions.runtime.manifest import ModelManifest
from functions.runtime.refs import DEFAULT_RULE
from functions.runtime.registry import Registry, parse_ref
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import open_store
from functions.runtime.text_input import text_input
from infra.cli.arg_types import whole
from infra.cli.csv_rows import read_rows, read_texts
from infra.cli.explain_file import FileRows, answered_elsewhere, explain_file
from infra.cli.explain_plot import attributions, draw, picture, shown_note, shown_values
from infra.cli.file_args import file_suffix, is_file
from infra.cli.image_files import read_images
from infra.cli.jsonl_rows import JSONL_SUFFIXES, read_jsonl
from infra.cli.output_file import check_folder, output_file
from infra.cli.pyplot import pyplot
from infra.cli.row_progress import add_flag

SHOWN = 8  # features listed per row (a text lists all its tokens)
MAX_BINS = 1000  # `--bins 99999999` spent minutes in np.quantile before any other check
MAX_PATCH = 100_000  # pixels: over any image's side


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("explain", help="feature attributions of predictions (Kernel SHAP)")
    p.add_argument("ref", help=f"NAME, NAME:VERSION or NAME@ALIAS; {DEFAULT_RULE}")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--inputs",
        help='what to explain, as JSON: one record {"feature": value, ...}, a list of records, '
        'rows [[...], ...], texts ["...", ...], columns {"a": [...], ...} for a model of [N] '
        'inputs, or a predict body ({"inputs": ...}, '
        '{"instances": [...]}); @FILE.json reads it from a file',
    )
    source.add_argument(
        "--file",
        type=Path,
        help="explain every row of a .csv, .jsonl or .npy file, for a text model every line of a "
        ".txt or the text column of a .csv or .jsonl (as aiaas batch reads them), for a model "
        "of any image size every image of an .npy or a .jsonl (each line its own size) (JSONL "
        "out, in the file's order)",
    )
    p.add_argument(
        "--samples",
        type=whole(2, MAX_SAMPLES),
        help="coalitions per row (default: 2 x features + 2048), at most every one of the "
        "features: 2^F - 2, whose attributions are exact",
    )
    p.add_argument(
        "--patch",
        type=whole(1, MAX_PATCH),
        help="image models: patch size in pixels (default: the size that cuts an image into about 16 patches)",
    )
    p.add_argument("--out", type=Path, help="with --file: write JSONL here (default: stdout)")
    p.add_argument(
        "--json", action="store_true", help="with --inputs: print the explanation document"
    )
    p.add_argument(
        "--png", type=Path, help="with --inputs: also draw the first row's attributions to this PNG"
    )
    add_flag(p, "a --file run")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser(
        "baseline", help="store what explanations and drift compare with (from training data)"
    )
    p.add_argument("ref", help=f"NAME, NAME:VERSION or NAME@ALIAS; {DEFAULT_RULE}")
    p.add_argument(
        "data",
        type=Path,
        help="a .csv (named, or as batch reads them: X_0, ...) or .npy of model rows; for a "
        "model of any image size an .npy or a .jsonl of images (each line its own size); for a "
        "text model its texts: a .csv with the text column, a .jsonl of records or one text a "
        "line, or an .npy of token ids [rows, tokens]",
    )
    p.add_argument(
        "--clusters",
        type=whole(1, MAX_CLUSTERS),
        default=DEFAULT_CLUSTERS,
        help="k-means centres kept (10)",
    )
    p.add_argument(
        "--bins", type=whole(2, MAX_BINS), default=10, help="drift: quantile bins a feature (10)"
    )
    p.set_defaults(func=_baseline)


def _baseline(args: argparse.Namespace) -> int:
    from infra.cli.baseline_command import cmd_baseline  # it reads this module's plane

    return cmd_baseline(args)


def explain_plane(args: argparse.Namespace, ref: str | None = None) -> tuple[Any, ModelManifest]:
    """The explain data plane over `args.ref` (or `ref`), and the manifest it serves."""
    from functions.runtime.dataplane.explain import ExplainPlane
    from functions.runtime.dataplane.model import ModelPlane
    from functions.runtime.pool import ModelPool
    from functions.runtime.served import ServedModel

    settings = RuntimeSettings.from_env()
    registry = Registry(open_store(args.store or settings.store))
    served = ServedModel(ModelPool(registry, settings=settings), parse_ref(ref or args.ref))
    plane = ExplainPlane(ModelPlane(served), settings.explain_max_seconds)
    return plane, served.current().manifest


def cmd_explain(args: argparse.Namespace) -> int:
    plane, manifest = explain_plane(args)
    parameters = {k: v for k, v in (("samples", args.samples), ("patch", args.patch)) if v}
    if args.file and args.png:  # was ignored: no picture, and no word of it
        raise BadRequest("--png draws one explanation: give it with --inputs, not --file")
    if args.out and not args.file:  # was ignored: the table printed, no file, exit 0
        raise BadRequest("--out writes --file's JSON lines: with --inputs, use --json > FILE")
    if args.png:  # a missing extra or folder before the work, not after the table it cannot draw
        pyplot()
        check_folder(args.png)
    if args.file:
        # What the model needs to be explained at all (a background), a --patch it cannot take,
        # or --samples too few for its features or patches, fails here once, not row by row.
        explainer = plane.patched(plane.models.model(manifest.name, manifest.version), args.patch)
        if isinstance(explainer, Explainer):  # a text's tokens, an image's size: row by row
            groups = grouping(manifest, args.patch)
            unit = "feature" if groups.patch is None else "patch"
            check_samples(args.samples, len(groups.columns), unit)
        rows = _file_rows(args.file, manifest)
        elsewhere = answered_elsewhere(rows, manifest, args.file)
        if elsewhere is not None:  # on stderr: the JSONL may be stdout
            print(f"note: {elsewhere}", file=sys.stderr)
        text = text_input(manifest) is not None
        show = not args.no_progress
        return explain_file(plane, manifest, args.file, rows, parameters, args.out, text, show=show)
    value = _inputs_value(args.inputs)
    body = inputs_body(value, manifest)
    given = body.get("parameters")  # a predict body's own: were dropped, even misspelled ones
    if given is None or isinstance(given, dict):  # anything else: the data plane's 400
        body["parameters"] = {**(given or {}), **parameters}  # a flag wins
    try:
        doc = plane.explain(manifest.name, manifest.version, orjson.dumps(body))
    except InvalidInput as exc:  # a shape the user never wrote: [1, 2] for their [0.5, 0.6]
        if " has a batch of " in exc.message and "; the limit is " in exc.message:
            raise InvalidInput(f"{exc.message} rows a request; {MANY_ROWS}") from None
        if not _record_of_lists(value, body):
            raise
        raise InvalidInput(f"{exc.message}; {SEVERAL_ROWS}") from None
    print(json.dumps(doc, indent=2) if args.json else "\n".join(describe(doc)))
    row = manifest.inputs[0].shape[1:]
    if doc["parameters"].get("read_as") == "image" and len(row) == 2 and row[0] != row[1]:
        # A [100, 12] window's shape cannot tell (a square [28, 28] is taken for a picture)
        print(f"note: {IMAGE_READ_NOTE}", file=sys.stderr)
    if args.png:
        image = _first_image(body, manifest) if "patch" in doc["parameters"] else None
        with output_file(args.png) as written:  # a missing folder: one line, not a traceback
            draw(doc, written, image, manifest.inputs[0].shape[1:], declared_window(manifest))
        if not args.json:  # --json: stdout is the document alone (`| jq`), as compare's
            print(f"wrote {args.png}")
    return 0


# Said under an explanation of a 2-D row cut into square patches: a sensor window read so has
# patches mixing sensors (patch_r0_c0: steps 0-5 of sensors 0-5), and nothing said why.
IMAGE_READ_NOTE = (
    "read as a greyscale image (square patches of neighbouring rows and columns); a window of "
    "features over time is published with `aiaas publish --window-features last` ([N, steps, "
    "features]) or `first` ([N, features, steps]) to be explained in runs of one feature"
)


def _first_image(body: dict[str, Any], manifest: ModelManifest) -> np.ndarray:
    """The first explained image as drawn under its heat map (`picture`: RGB or grey)."""
    from functions.runtime.codecs import simple

    spec = manifest.inputs[0]
    pixels = np.asarray(next(iter(simple.decode(body, manifest, fields=None).values())))
    if pixels.ndim < len(spec.shape):  # one image without its batch axis
        pixels = pixels[None]
    # The image's own shape: a model of any image size has no one shape to draw it in.
    return picture(pixels[0], tuple(pixels.shape[1:]), any_size_layout(manifest))


def _inputs_value(text: str) -> Any:
    try:
        # utf-8-sig: PowerShell 5's `Out-File -Encoding utf8` and Notepad write a byte order mark
        raw = Path(text[1:]).read_text(encoding="utf-8-sig") if text.startswith("@") else text
    except OSError as exc:  # @FILE missing, or a folder: was a traceback
        raise BadRequest(f"--inputs {text}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:  # an image (@cat.png) was only "not UTF-8 text (byte 1)"
        error = not_json(exc, Path(text[1:]).read_bytes())
        raise BadRequest(error.message.replace("request body", f"--inputs {text}", 1)) from None
    try:  # the data plane's parser: json.loads took 1e400 and NaN, which the body sent on
        value = orjson.loads(raw)  # then carried as null ("a missing value"), HTTP refuses
    except orjson.JSONDecodeError as exc:
        error = not_json(exc, raw.encode("utf-8", "surrogateescape"))
        raise BadRequest(error.message.replace("request body", "--inputs", 1)) from None
    return value


# What --inputs takes, said whenever it gets something else.
INPUTS_SHAPES = (
    'give one record {"feature": value, ...}, a list of records [{...}, ...], a list of rows '
    '[[...], ...], a text "..." or ["...", ...] for a text model, or a predict body '
    '{"inputs": ...} or {"instances": [...]}; @FILE.json reads any of them from a file'
)


# Said after a refusal of one record whose values are lists (read as one row's vectors).
MANY_ROWS = (  # the 64-row limit of one request, said as the way out of it
    "--file explains a file of any length (a .csv, .jsonl or .npy of the rows), 64 at a time"
)
SEVERAL_ROWS = (
    'to explain several rows, give a list of records [{...}, ...], or {"inputs": {...}} '
    "with a list of values an input"
)


def inputs_body(value: Any, manifest: ModelManifest) -> dict[str, Any]:
    """A predict body from what a person types: one record (`{"age": 30, ...}`, as a form or a
    DataFrame row gives it) was sent as a body, and the data plane said it "needs exactly one
    of inputs or instances"; records are `instances`, rows or texts `inputs`. For a model of
    [N] inputs only, a dict of equal-length lists is columns (`inputs`), as the served API
    reads that dict: one record of such a model has no list in it to hold."""
    if isinstance(value, dict) and ("inputs" in value or "instances" in value):
        return value  # a predict body, as POST /models/{name}/explain takes it
    if isinstance(value, dict) and _columns(value, manifest):
        return {"inputs": value}  # {"a": [0.5, 0.6], "b": [0.1, 0.2]}: two rows
    if isinstance(value, dict) and value and set(value) != {"parameters"}:
        return {"instances": [value]}  # one record
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return {"instances": value}  # records, the way a DataFrame's rows are written
    if isinstance(value, str):
        return {"inputs": [value]}  # one text
    if isinstance(value, list) and value:
        return {"inputs": value}  # rows (or texts)
    raise BadRequest(f"--inputs got {_kind(value)}: {INPUTS_SHAPES}")


def _columns(value: dict[str, Any], manifest: ModelManifest) -> bool:
    """`value` is columns: a non-empty list of one length an input, every input of the model
    one value a row ([N]); for [N, F] inputs a dict of lists is one record's vectors."""
    lists = list(value.values())
    if not lists or not all(isinstance(v, list) and v for v in lists):
        return False
    return len({len(v) for v in lists}) == 1 and all(s.rank == 1 for s in manifest.inputs)


def _record_of_lists(value: Any, body: dict[str, Any]) -> bool:
    """--inputs was one bare record holding a list, which `inputs_body` sent as `instances`."""
    records = body.get("instances")
    read = isinstance(records, list) and len(records) == 1 and records[0] is value
    return read and any(isinstance(v, list) for v in value.values())


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a body with no inputs" if value else "an empty object"
    if isinstance(value, list):
        return "an empty list"
    return f"a single {type(value).__name__ if value is not None else 'null'} ({value!r})"


def _file_rows(path: Path, manifest: ModelManifest) -> FileRows:
    """The readable rows of a file, and {row: why} for the others (a CSV cell not a number, a
    JSONL line batch would refuse: a feature missing, an image not of the model's channels)."""
    layout = any_size_layout(manifest)
    if layout is not None:
        return read_images(path, manifest, layout)
    text = text_input(manifest)
    records: list[dict[str, Any]] = []
    lines: list[int] = []  # the line an editor shows, as batch's error records name it
    # Read as `aiaas batch` reads its lines.
    if file_suffix(path) in JSONL_SUFFIXES and is_file(path):
        return read_jsonl(path, manifest, exact=True)  # a text model: its text field
    if text is not None:
        bad: dict[int, str] = {}  # a row not UTF-8: reported as batch reports it
        texts = read_texts(path, text.field, records, lines, bad, manifest=manifest)
        return FileRows(np.array(texts, dtype=object), bad, lines, records or None)
    bad = {}
    # An empty cell is a missing value as `aiaas batch` reads it: NaN for a model that takes
    # them (trained on a table with gaps), else the row's error saying so.
    # An int64 past 2^53 (an id, a hash) kept as written, as predict scores it.
    rows = read_rows(path, manifest, bad, records, lines=lines, exact=True)
    return FileRows(rows, bad, lines if file_suffix(path) != ".npy" else None, records or None)


def describe(doc: dict[str, Any]) -> list[str]:
    """Each row's prediction and its largest attributions (a text: every token, in its order),
    for a terminal."""
    lines = [
        f"{doc['model']}:{doc['version']} {doc['method']} "
        + ", ".join(f"{k}={v}" for k, v in doc["parameters"].items())
    ]
    for index, row in enumerate(doc["explanations"]):
        names, values, column = attributions(doc, row)
        values = shown_values(values)
        target = row.get("label", doc["outputs"][0])
        lines.append(
            f"row {index}: {target} = {row['prediction'][column]:.4g} "
            f"(base {row['base_value'][column]:.4g}){shown_note(row)}"
        )
        order = range(len(names)) if "tokens" in row else np.argsort(-np.abs(values))[:SHOWN]
        lines += [f"  {names[i]:24} {values[i]:+.4g}" for i in order]
    return lines
