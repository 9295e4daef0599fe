"""What `aiaas batch` checks of its input before anything is uploaded: a file it can read, a
model name (not a version reference), an object name the input folder and the store can hold."""

from __future__ import annotations

import argparse
from pathlib import Path

from functions.runtime import names
from functions.runtime.batch.layout import (
    BatchObject,
    NameTooLong,
    UnsupportedFormat,
    check_room,
    input_key,
    parse_input_key,
)
from functions.runtime.errors import BadRequest, InvalidName
from functions.runtime.registry import Registry
from functions.runtime.store import ObjectStore
from infra.cli.array_file_advice import named_rows_array
from infra.cli.file_args import is_file, not_readable

ANOTHER_NAME = "give another with --name NAME"  # a file's name the input cannot take


def _refuse_reference(store: ObjectStore, given: str) -> None:
    """`houses:2` or `houses@staging`: batch scores a model's production alias (the folder is
    the model's), and the name rule alone told the user nothing (hunt_journey2 4). A name that
    is no model's gets the unknown model's refusal instead (`versions` below)."""
    name = given.partition(":")[0].partition("@")[0]
    if name == given or not names.is_model_name(name):
        return
    Registry(store).versions(name)  # a model not published: refused as such first
    raise BadRequest(
        f"a model name, not {given!r}: batch scores the version {name}@production points at "
        f"(else the newest): give {name} alone for it. To score another version "
        "without moving production's callers, publish its file as a model of its own "
        f"(aiaas publish FILE --name {name}-candidate) and batch that; "
        f"aiaas compare {name} A B --data FILE sets two versions' answers side by side"
    )


def checked_input(store: ObjectStore, args: argparse.Namespace) -> BatchObject:
    """Where the file goes, every refusal said before anything is uploaded."""
    path: Path = args.file
    problem = not_readable(path)
    if problem is not None:
        swapped = is_file(Path(args.model))  # `aiaas batch rows.csv iris`
        hint = f"; the model comes first: aiaas batch {path} {args.model}" if swapped else ""
        raise BadRequest(problem.line + hint)
    _refuse_reference(store, args.model)
    model = names.model_name(args.model)  # refused in its own words: no --name to suggest
    name = args.name or path.name
    try:  # the name alone first: a newline in it was a whole store key's other wording
        obj = parse_input_key(input_key(model, names.job_file_name(name)))
    except InvalidName as exc:  # `.tmp-rows.csv`, `a\nb.csv`: the file is fine, its name is not
        raise InvalidName(f"{exc.message} ({ANOTHER_NAME})") from None
    if obj is None:  # job_file_name refuses every name parse_input_key passes over
        raise BadRequest(f"invalid job file name {names.shown(name)} ({ANOTHER_NAME})")
    try:
        _ = obj.format  # an unsupported extension fails here
    except UnsupportedFormat as exc:  # an .npz: the numpy line names the array it holds
        raise UnsupportedFormat(named_rows_array(exc.message, path)) from None
    try:  # a name the store's files cannot hold with its results' suffixes (a directory's)
        check_room(obj, store.name_bytes)
    except NameTooLong as exc:
        raise NameTooLong(f"{exc.message} ({ANOTHER_NAME})") from None
    Registry(store).versions(args.model)  # so does a model not published
    return obj
