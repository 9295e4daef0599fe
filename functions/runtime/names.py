"""Validation of the names that become storage keys: models, versions and aliases.

Every name that enters from outside (HTTP paths, CLI arguments, event keys, environment)
goes through here before it is joined into a key, so `../` or `%2F` can never escape
a model's prefix.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TypeGuard

from functions.runtime.errors import Conflict, InvalidName

# The rules as regular expressions (also the OpenAPI document's path parameter patterns).
MODEL_PATTERN = r"[a-z0-9](?:[a-z0-9_.-]{0,62}[a-z0-9])?"
VERSION_PATTERN = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?"
ALIAS_PATTERN = r"[a-z](?:[a-z0-9_-]{0,30}[a-z0-9])?"
NO_DOTS = r"(?!.*\.\.)"  # no `..` anywhere: `_check` refuses it (for patterns in the OpenAPI)
_MODEL = re.compile(MODEL_PATTERN)
_VERSION = re.compile(VERSION_PATTERN)
_ALIAS = re.compile(ALIAS_PATTERN)

MODEL_RULE = (
    "1-64 characters of a-z, 0-9, '-', '_', '.', starting and ending with a letter or digit"
)
VERSION_RULE = "1-64 characters of A-Z, a-z, 0-9, '.', '_', '-', starting and ending alphanumeric"
ALIAS_RULE = "1-32 characters of a-z, 0-9, '-', '_', starting with a letter"


def _check(kind: str, value: object, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value) or ".." in value:
        raise InvalidName(f"invalid {kind} {shown(value)}: use {rule}")
    return value


SHOWN_CHARACTERS = 72


def shown(value: object) -> str:
    """`value` as an error message quotes it: a long one cut, saying how long it was (its repr
    was cut at 80 characters, closing quote and all: where did the name end?)."""
    if isinstance(value, str) and len(value) > SHOWN_CHARACTERS:
        return f"{value[:60]!r}... ({len(value)} characters)"
    return repr(value)[:80]


def shown_names(values: Collection[object], most: int = 5, *, quoted: bool = True) -> str:
    """The first `most` of `values` as a message lists them, each as `shown` cuts it (without
    its quotes where not `quoted`, and a short one as it is), then how many more: a body of
    200,000 unknown names was listed whole in a 1.5 MB error."""
    listed = [
        shown(v) if quoted or not isinstance(v, str) or len(v) > SHOWN_CHARACTERS else v
        for v in list(values)[:most]
    ]
    more = len(values) - len(listed)
    return ", ".join(listed) + (f" and {more} more" if more > 0 else "")


SHOWN_PATH_CHARACTERS = 200


def shown_path(path: str) -> str:
    """A request path as an error message names it: control characters escaped as repr does
    (`m\\n`; a rebuilt URL drops tab, CR and LF, and a 404 for `a%0a.csv` named `a.csv`), and a
    long one cut, saying how long it was (a 64 KiB path made a 128 KiB error)."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)
    if len(text) > SHOWN_PATH_CHARACTERS:
        return f"{text[:SHOWN_PATH_CHARACTERS]}... ({len(path)} characters)"
    return text


SHOWN_MESSAGE_CHARACTERS = 2_000
_LONG_RUN = re.compile(rf"\S{{{SHOWN_PATH_CHARACTERS + 1},}}")


def shown_message(message: str) -> str:
    """An error message as a response carries it: each run of over 200 characters without a
    space cut as `shown_path` cuts a path, and the whole kept to about 2,000 characters (its
    start and end: what to fix is often said last). Messages quote what the caller sent (a
    label, a field's name, a setting), and a 1 MB one made a 1 MB error (control hunt 5)."""
    cut = _LONG_RUN.sub(
        lambda run: f"{run[0][:SHOWN_PATH_CHARACTERS]}... ({len(run[0])} characters)", message
    )
    if len(cut) <= SHOWN_MESSAGE_CHARACTERS:
        return cut
    head, tail = cut[: SHOWN_MESSAGE_CHARACTERS * 3 // 4], cut[-SHOWN_MESSAGE_CHARACTERS // 4 :]
    return f"{head} ... ({len(cut) - len(head) - len(tail)} characters left out) ... {tail}"


def model_name(value: object) -> str:
    """Return `value` if it is a valid model name, else raise InvalidName."""
    return _check("model name", value, _MODEL, MODEL_RULE)


def is_model_name(value: str) -> bool:
    """True when `value` would pass `model_name`."""
    return bool(_MODEL.fullmatch(value)) and ".." not in value


def version_name(value: object) -> str:
    """Return `value` if it is a valid version, else raise InvalidName."""
    return _check("version", value, _VERSION, VERSION_RULE)


# The folders beside a model's `versions/` (models/<name>/aliases/, ...). IAM grants name keys by
# patterns whose `*` matches '/' too: `registry/models/*/aliases/*`, the control plane's and the
# rollout function's to move aliases, also took in `models/m/versions/aliases/manifest.json`,
# so a version of one of these names had files those roles could replace (template.yaml).
RESERVED_VERSIONS = ("aliases", "deleted_aliases", "rollouts", "versions")


def new_version_name(value: object) -> str:
    """`version_name`, and not one of RESERVED_VERSIONS: for a version about to be published
    (a store's older versions of such a name are still read, pruned and served)."""
    version = version_name(value)
    if version in RESERVED_VERSIONS:
        raise InvalidName(
            f"invalid version {version!r}: {', '.join(RESERVED_VERSIONS)} name the folders "
            "beside a model's versions (where its aliases and rollouts are written), so a "
            "version of that name would not be write-once; pick another name"
        )
    return version


def next_number(model: str, taken: Collection[str]) -> str:
    """One more than the largest number among `taken` (names not counted), for a publish not
    given a version. A number of 64 digits has no next one a version name can hold: said as
    what it is (it read "invalid version '1000…0'", a version the user never gave, for ever,
    as a number is never reused, pruned or not), with what to do."""
    highest = max((int(v) for v in taken if v.isascii() and v.isdigit()), default=0)
    following = str(highest + 1)
    if not _VERSION.fullmatch(following):
        raise Conflict(
            f"model {model!r} has no next version number: its highest, {str(highest)[:12]}… "
            f"({len(str(highest))} digits), is followed by none a version name can hold "
            "(1-64 characters); publish with --version NAME (a name, or an unused number)"
        )
    return following


def is_alias_name(value: str) -> bool:
    """True when `value` would pass `alias_name`."""
    return bool(_ALIAS.fullmatch(value))


def alias_name(value: object) -> str:
    """Return `value` if it is a valid alias, else raise InvalidName."""
    return _check("alias", value, _ALIAS, ALIAS_RULE)


STORE_KEY_RULE = (
    "'/'-separated parts of 1-255 characters, none '.' or '..', no control characters, "
    "1024 characters in all"
)
# The same as a pattern, for the OpenAPI (its length is the schema's maxLength): a key, or its
# rest after a fixed prefix ending in '/' (`uploads/` + this). The count of parts is left to
# maxLength (1024 characters hold at most 512): written `{0,511}`, the bound changed no key
# taken, yet every client that compiled the document (schemathesis, a JSON Schema validator)
# built a regex of 511 x 255 repeats, ~1 s each time (CI's fuzz of the batch and compare bodies
# spent ~75 CPU-seconds on it).
STORE_KEY_PATTERN = (
    r"(?!(?:.*/)?\.\.?(?:/|$))[^/\x00-\x1f\x7f]{1,255}(?:/[^/\x00-\x1f\x7f]{1,255})*"
)


def store_key(value: object, what: str) -> str:
    """Return `value` if it can be a key of an object in the store, else raise InvalidName.

    For keys a caller names whole (a batch job's `source`, a comparison's `data`): without
    this, `a//b` or `a/./b` reached the store's own check as a 500, a NUL byte a 500 in plain
    text, and a 300-character part the file system's "name too long" as a 503.
    """
    if not _is_store_key(value):
        raise InvalidName(f"invalid {what} {shown(value)}: a store key of {STORE_KEY_RULE}")
    return value


def _is_store_key(value: object) -> TypeGuard[str]:
    if not isinstance(value, str):
        return False
    return not (
        len(value) > 1024
        or any(p in ("", ".", "..") or len(p) > 255 for p in value.split("/"))
        or any(ord(c) < 32 or ord(c) == 127 for c in value)
        or not is_text(value)
    )


def is_text(value: str) -> bool:
    """Whether `value` is text UTF-8 can hold, as every S3 key is: not a lone surrogate, which
    JSON can send (`"\\ud800.csv"`, a 500 as a job's file) and a directory store's file name not
    in UTF-8 reads as (`os.fsdecode`)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


TEMP_PREFIX = ".tmp-"  # a directory store's own temp files: hidden from listings, swept
JOB_FILE_RULE = f"{STORE_KEY_RULE}, none starting with {TEMP_PREFIX!r}"
# A job's file is the rest of `batch/<model>/input/<file>`, a key of 1024 characters at most:
# the length a file of any model's may have (a document said 1024, and 1019 was refused).
MAX_MODEL_NAME = 64
MAX_JOB_FILE = 1024 - len(f"batch/{'m' * MAX_MODEL_NAME}/input/")
JOB_FILE_PATTERN = r"(?!(?:.*/)?\.tmp-)" + STORE_KEY_PATTERN  # `job_file_name`, for the OpenAPI


def job_file_name(value: object) -> str:
    """Return `value` if it can be a batch input's `<file>` under `batch/<model>/input/`
    (`data.csv`, `2026/01/nightly 2026-12-02.csv`), else raise InvalidName.

    The one rule for both ways in: the S3 event path (`parse_input_key`) scores what passes,
    and the control plane's job API names a job by it, so every key an event scores has a
    job status. It is a store key's rule (no `..` part, no control character, bounded parts),
    less the directory store's temp names, which the store hides and sweeps away.
    """
    if not _is_store_key(value) or any(part.startswith(TEMP_PREFIX) for part in value.split("/")):
        raise InvalidName(f"invalid job file name {shown(value)}: use {JOB_FILE_RULE}")
    return value
