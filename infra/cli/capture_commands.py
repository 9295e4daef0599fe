"""`aiaas capture`: turn a model's data capture on or off, show it, export what it captured."""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from functions.runtime import names
from functions.runtime.capture.reader import capture_keys, captured_lines, parse_since
from functions.runtime.capture.rows import META, SERVED, Row, TokenIds, rows_of
from functions.runtime.capture.setting import read_setting, set_capture
from functions.runtime.errors import BadRequest, NotFound, VersionPruned
from functions.runtime.formula_cells import FIRST, STARTS, is_formula
from functions.runtime.manifest import ModelManifest
from functions.runtime.prune_log import pruned_versions
from functions.runtime.refs import version_sort_key
from functions.runtime.registry import Registry
from functions.runtime.settings import DEFAULT_ALIAS_TTL, RuntimeSettings
from functions.runtime.store import open_store
from infra.cli.arg_types import capture_sample
from infra.cli.capture_gap_cells import GapCells
from infra.cli.file_args import file_suffix
from infra.cli.misspelled import meant
from infra.cli.output_file import output_file
from infra.cli.printable import printable

FORMATS = (".csv", ".jsonl")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "capture",
        help="capture a sample of a model's requests and answers, or export them",
        # argparse's own usage of the one `nargs="+"` positional repeats it: "MODEL | export
        # MODEL [MODEL | export MODEL ...]"; the two forms, as the docs give them, read better.
        usage="%(prog)s MODEL [--sample S | --off] [--deny FIELDS]   (no option: show it)\n"
        "       %(prog)s export MODEL --out FILE.csv|.jsonl [--version V] [--since YYYY-MM-DD] "
        "[--exact]",
        description="A sampled share of the answered predict and JSON infer requests is written with its "
        "answer to capture/MODEL/VERSION/DATE/ in the store (the function reads the setting "
        "within the alias TTL, no redeploy); denied fields are removed before anything is "
        "written. Export writes the captured inputs as rows by feature name, with the served "
        "prediction (served_*), for aiaas batch or a training spec; a JSONL export writes an "
        "image's or a multi-input model's rows by input name (as batch JSONL reads them), and "
        "a model whose rows have dynamic sizes (images of any size) exports to JSONL only. A "
        "CSV is safe to open in a spreadsheet: a text cell starting with =, +, -, @, tab, CR or "
        "NUL gets a leading ' (shown as text, not run as a formula); --exact writes it as "
        "captured (JSONL always is).",
    )
    p.add_argument(
        "words",
        nargs="+",
        metavar="MODEL | export MODEL",
        help="the model to set or show; or `export` and the model to export",
    )
    p.add_argument(
        "--sample", type=capture_sample, help="share of answered requests captured, 0 to 1"
    )
    p.add_argument(
        "--deny",
        help="comma-separated fields never written (body keys, record fields, feature names, "
        "OIP inputs); '' clears the list; default: keep the list set before",
    )
    p.add_argument("--off", action="store_true", help="stop capturing (sample 0)")
    p.add_argument("--version", help="export: this version only (default: all)")
    p.add_argument("--since", help="export: days from this UTC date on (YYYY-MM-DD)")
    p.add_argument("--out", type=Path, help="export: the file to write, .csv or .jsonl")
    p.add_argument(
        "--exact",
        action="store_true",
        help="export: a CSV with every text as captured, for aiaas batch / compare / training; "
        "do not open it in a spreadsheet (a text such as =HYPERLINK(...) would run)",
    )
    p.set_defaults(func=cmd_capture)


def cmd_capture(args: argparse.Namespace) -> int:
    registry = Registry(open_store(args.store))
    if args.words[0] == "export" and len(args.words) == 2:
        return export(registry, args.words[1], args)
    if args.words == ["export"] and (args.out is not None or not _published(registry, "export")):
        raise BadRequest("capture export MODEL: name the model whose captured requests to export")
    if len(args.words) != 1:
        # only for a model name: the hint repeats it, and it is what the command would take
        named = len(args.words) == 2 and names.is_model_name(args.words[1])
        slip = meant(args.words[0], ["export"]) if named else None
        hint = f"; did you mean: aiaas capture export {args.words[1]}" if slip else ""
        raise BadRequest(f"give MODEL (to set or show its capture), or export MODEL{hint}")
    name = names.model_name(args.words[0])
    given = [f for f, v in (("--out", args.out), ("--since", args.since),
             ("--version", args.version), ("--exact", args.exact or None)) if v is not None]  # fmt: skip
    if given:  # was ignored: `aiaas capture m --since ...` printed the setting, exit 0
        raise BadRequest(
            f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for capture export: "
            f"aiaas capture export {name} ..."
        )
    if args.off and args.sample is not None:
        raise BadRequest("give --sample or --off, not both")
    if not args.off and args.sample is None and args.deny is None:
        registry.versions(name)  # an unknown model is an error, not "off"
        # A record another writer left may name fields with control characters: shown escaped.
        print(f"{name}: capture {printable(read_setting(registry.store, name).describe())}")
        return 0
    sample: float | None = 0.0 if args.off else args.sample
    if sample is None:
        sample = read_setting(registry.store, name).sample  # --deny alone keeps the share
    deny = None if args.deny is None else [f for f in args.deny.split(",") if f.strip()]
    actor = RuntimeSettings.from_env().actor
    setting = set_capture(registry, name, sample=sample, deny=deny, actor=actor)
    print(f"{name}: capture {printable(setting.describe())}")
    # A burst sent right after `--sample` was lost, unsaid: the functions poll the setting.
    print(
        "running predict functions read the change within their AIAAS_ALIAS_TTL "
        f"({DEFAULT_ALIAS_TTL:g} s by default), at a request"
    )
    return 0


def _published(registry: Registry, name: str) -> bool:
    try:
        return bool(registry.versions(name))
    except NotFound:
        return False


def _check_version(registry: Registry, name: str, version: str | None) -> None:
    """A --version that names no version here: was "nothing captured ... check whether
    capture is on", which sent the user to the setting (and an alias, `production`, is no
    version). A pruned one's lines stay, and the export says what it can of them."""
    versions = registry.versions(name)  # 404 for an unknown model
    if version is None or version in versions or version in pruned_versions(registry.store, name):
        return
    target = registry.alias(name, version) if names.is_alias_name(version) else None
    if target is not None:
        raise BadRequest(
            f"--version takes a version: {name}@{version} is version {target} (--version {target})"
        )
    shown = ", ".join(versions[-8:])
    raise BadRequest(f"{name} has no version {version!r} (its versions: {shown})")


def _say_pruned(read: _Lines, name: str) -> None:
    if read.bad:
        print(
            f"{len(read.bad)} captured lines skipped, not as captured (no JSON object, or "
            f"naming another version than their folder's): {read.bad[0]}"
        )
    if read.ids:
        print(
            f"{read.ids} captured requests sent token ids, not text: skipped (the export "
            f"holds a text model's texts; those lines stay under capture/{name}/ as JSONL)"
        )
    if read.pruned:
        versions = ", ".join(sorted(read.pruned, key=version_sort_key))
        print(
            f"{sum(read.pruned.values())} captured lines of pruned version(s) {versions} not "
            "exported: their manifests, which say how to read them, are gone (the lines stay "
            f"under capture/{name}/<version>/ as JSONL)"
        )


def export(registry: Registry, model: str, args: argparse.Namespace) -> int:
    out: Path | None = args.out
    if out is None or file_suffix(out) not in FORMATS:
        raise BadRequest("export needs --out FILE.csv or FILE.jsonl")
    if args.exact and file_suffix(out) != ".csv":
        raise BadRequest("--exact is for a CSV export; a JSONL export is always exact")
    name = names.model_name(model)
    if args.sample is not None or args.off or args.deny is not None:
        raise BadRequest(
            "--sample, --off and --deny set what is captured; capture export takes none of "
            f"them: aiaas capture {name} --sample ... first, then export"
        )
    _check_version(registry, name, args.version)
    jsonl = file_suffix(out) == ".jsonl"
    read = _Lines(registry, name, args.version, parse_since(args.since), jsonl)
    # Read twice for a CSV (its header first, then its rows), never held whole: a month of
    # capture is millions of rows (216,000 took 418 MB as CSV, 1.26 GB as JSONL, held).
    header = None if jsonl else read.rows()
    with output_file(out) as written:
        written_rows, formulas = write_rows(
            written,
            read.rows(),
            exact=args.exact,
            features=lambda: read.features,
            header_rows=header,
        )
        _say_pruned(read, name)
        if (gaps := read.gaps.warning(name)) is not None:
            print(gaps, file=sys.stderr)
        if not written_rows:  # an empty file would only fail later, in `aiaas batch`
            # raised in the block: the file already at --out stays as it was (it was renamed
            # over, then deleted: last week's export gone, "nothing written" said)
            raise BadRequest(nothing_captured(name, args.version, args.since))
    print(f"{written_rows} rows of {name} written to {out}")
    if formulas and args.exact:
        print(
            f"{formulas} text cells start with {STARTS} and are written as captured: "
            "a spreadsheet would run them as formulas, so open only a copy exported without "
            "--exact"
        )
    elif formulas:
        print(
            f"{formulas} text cells starting with {STARTS} were written with a "
            "leading ' so a spreadsheet shows them as text; aiaas batch, compare and training "
            "would read that ' too: for those, export with --exact or to .jsonl"
        )
    return 0


class _Lines:
    """The rows of a model's captured lines, read from the store each time `rows` is iterated;
    the lines of pruned versions (no manifest to read them by) counted in `pruned`."""

    def __init__(
        self, registry: Registry, name: str, version: str | None, since: Any, nested: bool
    ) -> None:
        self.registry, self.name, self.version, self.since = registry, name, version, since
        self.nested = nested  # JSONL: each input whole by its name, as batch JSONL reads it
        self.manifests: dict[str, ModelManifest | None] = {}
        self.pruned: dict[str, int] = {}
        self.keys = capture_keys(registry.store, name, version, since)  # once, for both passes
        self.bad: list[str] = []  # lines no JSON object, skipped (`captured_lines`)
        self.ids = 0  # a text model's lines that sent token ids (no text), skipped
        self.gaps = GapCells()  # a CSV's texts read back as a missing value

    @property
    def features(self) -> list[str]:
        return [f for m in self.manifests.values() if m is not None for f in m.features]

    def rows(self) -> Iterator[Row]:
        self.pruned.clear()
        self.bad.clear()
        self.gaps.clear()
        self.ids = 0
        for line in captured_lines(self.registry.store, self.name, keys=self.keys, bad=self.bad):
            version = str(line.get("version"))
            manifest = self._manifest(version)
            if manifest is None:
                self.pruned[version] = self.pruned.get(version, 0) + 1
                continue
            # CSV: flat columns (refused for an input of dynamic row shape, which no fixed
            # columns hold).
            try:
                rows = rows_of(line, manifest, nested=self.nested)
            except TokenIds:
                self.ids += 1
                continue
            if not self.nested:
                self.gaps.see(manifest, rows)
            yield from rows

    def _manifest(self, version: str) -> ModelManifest | None:
        if version not in self.manifests:
            try:
                self.manifests[version] = self.registry.manifest(self.name, version)
            except VersionPruned:  # its lines stay: the export of every version failed
                if self.version is not None:
                    raise BadRequest(
                        f"version {version} of {self.name} was pruned: its captured lines "
                        "have no manifest left to read them by; they stay under "
                        f"capture/{self.name}/{version}/ as JSONL"
                    ) from None
                self.manifests[version] = None
        return self.manifests[version]


def nothing_captured(name: str, version: str | None, since: str | None) -> str:
    which = name + (f":{version}" if version else "") + (f" since {since}" if since else "")
    return (
        f"nothing captured of {which}, so nothing written; `aiaas capture {name}` shows whether "
        "capture is on (a predict function reads a change within the alias TTL)"
    )


def write_rows(
    out: Path,
    rows: Iterable[Row],
    *,
    exact: bool = False,
    features: Sequence[str] | Callable[[], Sequence[str]] = (),
    header_rows: Iterable[Row] | None = None,
) -> tuple[int, int]:
    """Write `rows` to `out`, one at a time; (rows written, and in a CSV the number of text
    cells a spreadsheet would run as formulas, each written with a leading ' unless `exact`;
    JSONL: 0, always exact). The CSV's columns: META, the inputs (`features` in their order
    first), then the served_* ones, from every row of `header_rows` (`rows` when not given: a
    list then, read twice)."""
    count = 0
    if file_suffix(out) == ".jsonl":  # a temp file keeps its export's suffix
        with out.open("wb") as handle:
            for row in rows:
                handle.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
                count += 1
        return count, 0
    seen: dict[str, Any] = {}
    for row in rows if header_rows is None else header_rows:
        seen.update(dict.fromkeys(row))
    # In first-seen order a column missing from the first rows came last, after served_*:
    # a field denied, so absent from records-form requests, or a version's new feature.
    named = features() if callable(features) else features
    rank = {name: i for i, name in enumerate(dict.fromkeys([*META, *named]))}
    header = sorted(seen, key=lambda c: (c.startswith(SERVED), rank.get(c, len(rank))))
    formulas = 0
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, restval="")
        writer.writeheader()
        for row in rows:
            cells = {k: "" if v is None else v for k, v in row.items()}
            # Most cells are numbers: a text's first character is checked before is_formula.
            found = [
                k for k, v in cells.items() if type(v) is str and v[:1] in FIRST and is_formula(v)
            ]
            formulas += len(found)
            if not exact:
                cells.update((key, "'" + cells[key]) for key in found)
            writer.writerow(cells)
            count += 1
    return count, formulas
