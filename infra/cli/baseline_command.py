"""`aiaas baseline REF DATA`: the files a version compares with, from its training data: the
explain background and the drift baseline (a text model, a model of any image size: the drift
baseline alone). Registered by explain_commands.py.

Each is written once (versions are immutable), and records what it was made from (`made_from`:
the data file's name and sha256, and the option that shapes it, `--clusters` or `--bins`). So a
run again is decided before the data is read or a model loaded: the same data with the same
options is done (exit 0, `already has ...`), as a job run again is; anything else is refused at
once. It had read and clustered the whole file first (28 s for 400,000 rows), then refused even
the data the files were made from.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from functions.runtime.drift.images import STEPS_FEATURE
from functions.runtime.errors import BadRequest, NotFound
from functions.runtime.explain.background import BACKGROUND_FILE, summarize
from functions.runtime.explain.explainer import explained_columns
from functions.runtime.file_hashes import sha256_file
from functions.runtime.image_layout import any_size_layout
from functions.runtime.manifest import ModelManifest
from functions.runtime.registry import Registry, parse_ref, version_prefix
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import ObjectExists, ObjectStore, open_store
from functions.runtime.text_input import text_input
from infra.cli.baseline_rows import cast_refusals, check_scorable, every_row, training_rows
from infra.cli.file_args import require_file
from infra.cli.image_files import read_images
from infra.cli.row_cells import background_rows

MADE_FROM = "made_from"  # the key each file records its data and options under


@dataclasses.dataclass
class Made:
    """What this run's files are made from: the data file (hashed once, when first asked)
    and, for each file it writes, the options that shape it."""

    path: Path
    options: Mapping[str, Mapping[str, int]]  # {file: {"bins": 10}}

    @cached_property
    def sha256(self) -> str:
        require_file(self.path)
        return sha256_file(self.path)

    def record(self, name: str) -> dict[str, Any]:
        return {"data": self.path.name, "data_sha256": self.sha256, **self.options[name]}

    def stamped(self, name: str, document: str) -> bytes:
        """`document` with this run's record, which readers of the file skip."""
        doc = json.loads(document)
        doc[MADE_FROM] = self.record(name)
        return json.dumps(doc, allow_nan=False).encode()

    def files(self) -> str:
        names = set(self.options)
        return "a background and a drift baseline" if len(names) > 1 else "a drift baseline"

    def said(self) -> str:
        """This data and its options, as a user would type them."""
        options = {k: v for name in self.options for k, v in self.options[name].items()}
        flags = "".join(f", --{k} {v}" for k, v in sorted(options.items()))
        return f"{self.path.name}, sha256 {self.sha256[:12]}{flags}"


def cmd_baseline(args: argparse.Namespace) -> int:
    from functions.runtime.drift.baseline import BASELINE_FILE

    settings = RuntimeSettings.from_env()
    store = open_store(args.store or settings.store)
    manifest = Registry(store).resolve(parse_ref(args.ref))  # its model loaded only if need be
    ref = f"{manifest.name}:{manifest.version}"
    text = text_input(manifest)
    drift_only = text is not None or any_size_layout(manifest) is not None
    options = {BASELINE_FILE: {"bins": args.bins}}
    made = Made(
        args.data,
        options if drift_only else {BACKGROUND_FILE: {"clusters": args.clusters}, **options},
    )
    if already_made(store, manifest, made):
        return _done(ref, made)
    from infra.cli.explain_commands import explain_plane

    # Pinned to the version checked above, wherever its alias has moved since.
    plane, _ = explain_plane(args, ref)
    if text is not None:  # a drift baseline of texts, no background (text_baseline.py)
        from infra.cli.text_baseline import text_baseline

        return text_baseline(plane, manifest, text, args, made)
    if drift_only:
        return _image_baseline(plane, manifest, args, made)
    return _row_baseline(plane, manifest, args, made)


def _row_baseline(plane: Any, manifest: ModelManifest, args: argparse.Namespace, made: Made) -> int:
    """Both files: the explain background and the drift baseline of the model's rows."""
    from functions.runtime.drift.baseline import BASELINE_FILE
    from functions.runtime.drift.categories import free_text_note
    from functions.runtime.drift.fit import fit

    rows = training_rows(args.data, manifest)
    ref = f"{manifest.name}:{manifest.version}"
    prefix = version_prefix(manifest.name, manifest.version)
    columns = explained_columns(manifest)
    model = plane.models.model(manifest.name, manifest.version)
    # Values the model's input cannot hold are refused by `fit`, naming the column (and a
    # feature missing in every row); values it holds but answers infinity for (3e38 + 3e38 in
    # float32) warned there, then were stored.
    with np.errstate(invalid="ignore", over="ignore"):
        drift = fit(model, rows, bins=args.bins)
    complete, note = background_rows(rows, columns.strings)  # the drift baseline counts gaps
    background = summarize(
        complete, clusters=args.clusters, strings=columns.strings, picked=columns.picked
    )
    if note:  # said where explanations report their background, not only on this terminal
        left = f"{background.source} ({note})"
        background = dataclasses.replace(background, source=left)
    check_scorable(model, background, complete, args.data)
    store = plane.models.served.pool.registry.store
    written = [
        name
        for name, text in (
            (BACKGROUND_FILE, background.to_json()),
            (BASELINE_FILE, drift.to_json()),
        )
        if put_once(store, f"{prefix}/{name}", made.stamped(name, text))
    ]
    if not written:  # another run wrote both meanwhile: done if from this data, else refused
        return _lost(store, manifest, made)
    for kept in {BACKGROUND_FILE, BASELINE_FILE} - set(written):
        print(f"kept the existing {kept}")
    if BACKGROUND_FILE in written:
        print(f"{ref}: background = {background.source}")
    if BASELINE_FILE in written:
        # A model of string columns alone (a text pipeline's) has no number to bin.
        binned = f"in {args.bins} bins a feature" if drift.width else "(no numeric feature)"
        counted = ", ".join(c.name for c in drift.categories)
        by = f"; {counted} counted by category" if counted else ""
        print(f"{ref}: drift baseline = {drift.rows} rows {binned}{by}")
        if drift.free_text:
            print(f"{ref}: {free_text_note(drift.free_text)}")
        if drift.unwatched:
            print(f"{ref}: {drift.unwatched}")
    return 0


def _image_baseline(
    plane: Any, manifest: ModelManifest, args: argparse.Namespace, made: Made
) -> int:
    """A model of any image size: a drift baseline of each image's channel statistics and
    size (drift/images.py), and no background (a left-out patch takes the image's mean)."""
    from functions.runtime.drift.fit import fit

    ref = f"{manifest.name}:{manifest.version}"
    layout = any_size_layout(manifest)
    read = every_row(args.data, read_images(args.data, manifest, layout or "chw"))
    images = every_row(args.data, dataclasses.replace(read, bad=cast_refusals(manifest, read.rows)))
    drift = fit(plane.models.model(manifest.name, manifest.version), images.rows, bins=args.bins)
    if not put_drift_baseline(plane, manifest, drift.to_json(), made):
        return 0
    rows, mean = "images", "image's own mean per channel"
    if drift.features[-1:] == (STEPS_FEATURE,):  # a sensor window of any length
        rows, mean = "windows", "window's own mean per feature"
    print(
        f"{ref}: drift baseline = {drift.rows} {rows} in {args.bins} bins a feature "
        f"({', '.join(drift.features)}); no background: explanations leave a patch out by "
        f"giving it the {mean}"
    )
    if drift.unwatched:
        print(f"{ref}: {drift.unwatched}")
    return 0


def put_drift_baseline(plane: Any, manifest: ModelManifest, document: str, made: Made) -> bool:
    """Store a version's drift baseline: True. False, said, when another run stored it from
    this data meanwhile; refused when from other data (one is never replaced)."""
    from functions.runtime.drift.baseline import BASELINE_FILE

    store = plane.models.served.pool.registry.store
    key = f"{version_prefix(manifest.name, manifest.version)}/{BASELINE_FILE}"
    if put_once(store, key, made.stamped(BASELINE_FILE, document)):
        return True
    _lost(store, manifest, made)
    return False


def put_once(store: ObjectStore, key: str, data: bytes) -> bool:
    try:
        store.put_bytes(key, data, if_absent=True)
    except ObjectExists:  # said by the caller: alone, before a refusal, it read as success
        return False
    return True


def already_made(
    store: ObjectStore, manifest: ModelManifest, made: Made, *, rows_read: bool = False
) -> bool:
    """True when every file this run writes is there, made from this data with these
    options: a run again, done. False when one is missing: the work writes it (and keeps the
    other). Refused (BadRequest), before the data is read, when all are there and one was
    made otherwise: from other data, with other options, or with no record of its data."""
    prefix = version_prefix(manifest.name, manifest.version)
    held = {}
    for name in made.options:
        try:
            held[name] = _record(store.get_bytes(f"{prefix}/{name}"))
        except NotFound:
            return False
    ref = f"{manifest.name}:{manifest.version}"
    why = next((w for name, r in held.items() if (w := _other(r, made, name))), None)
    if why is None:
        return True
    unread = "nothing was written" if rows_read else "no row was read and nothing written"
    raise BadRequest(
        f"{ref} already has {made.files()}, {why}; versions are immutable, so {unread}: "
        "publish a new version to baseline it again"
    )


def _record(document: bytes) -> Mapping[str, Any] | None:
    try:
        record = json.loads(document).get(MADE_FROM)
    except (ValueError, AttributeError):  # not a JSON object: no record to compare with
        return None
    return record if isinstance(record, Mapping) else None


def _other(record: Mapping[str, Any] | None, made: Made, name: str) -> str | None:
    """How the file `name` was made otherwise than this run would make it; None: the same."""
    if record is None:
        return "written with no record of its data (by `aiaas train`, or before baselines had one)"
    if record.get("data_sha256") != made.sha256:
        there = f"{record.get('data')}, sha256 {str(record.get('data_sha256'))[:12]}"
        return f"made from other data ({there}; {made.path.name} is {made.sha256[:12]})"
    for option, value in made.options[name].items():
        if record.get(option) != value:
            return f"made from this data with --{option} {record.get(option)} (not {value})"
    return None


def _done(ref: str, made: Made) -> int:
    print(f"{ref} already has {made.files()} made from this data ({made.said()}): nothing written")
    return 0


def _lost(store: ObjectStore, manifest: ModelManifest, made: Made) -> int:
    """Every file this run made was written by another run meanwhile: done when from this
    data (said), else refused by `already_made`."""
    # False: a file gone again since; never replaced all the same.
    if not already_made(store, manifest, made, rows_read=True):
        raise BadRequest(
            f"{manifest.name}:{manifest.version} already has {made.files()}; versions are "
            "immutable: publish a new version to change them"
        )
    return _done(f"{manifest.name}:{manifest.version}", made)
