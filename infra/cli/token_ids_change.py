"""A warning when a text model's version reads token ids as other tokens than the version its
callers are on.

Raw text is tokenized by each version's own tokenizer, so a retrain with a new vocabulary
answers text callers right. A client that tokenizes itself (docs/text.md: `GET
/models/{name}/tokenizer`, then token ids) does not: its ids from the old tokenizer are other
tokens in the new one. A BPE retrain of a WordPiece model was published, canaried, rolled out
to 100% and promoted without a word, while 73 of 200 such rows got another label with a 200
and 84 a 422 (hunt_journey6 1). Refusing would stop the raw-text retrain too, so publish,
promote and rollout say it, naming a token whose id moved (the comparison itself is
functions/runtime/token_ids.py, which the control plane's alias moves share).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from functions.runtime.alias_move_notes import callers_on, moves_said
from functions.runtime.file_hashes import sha256_file
from functions.runtime.manifest import ModelManifest
from functions.runtime.registry import Registry
from functions.runtime.text_input import text_input
from functions.runtime.token_ids import (
    ids_warning,
    recorded_sha,
    stored_ids,
    token_ids,
)


def _local_file(manifest: ModelManifest, extra_files: Mapping[str, Path]) -> Path | None:
    file = manifest.preprocessing.get("vocab_file")
    path = extra_files.get(file) if isinstance(file, str) else None
    return None if text_input(manifest) is None else path


def local_ids(manifest: ModelManifest, extra_files: Mapping[str, Path]) -> dict[str, int] | None:
    """Token -> id of a text version about to be published (its tokenizer beside the model)."""
    path = _local_file(manifest, extra_files)
    if path is None:
        return None
    try:
        return token_ids(manifest, path.read_bytes())
    except OSError:
        return None


def published_note(
    reg: Registry,
    served: ModelManifest,
    manifest: ModelManifest,
    extra_files: Mapping[str, Path],
) -> str | None:
    """The warning for `manifest`, about to be published, against `served` (what the bare name
    serves). Neither downloaded nor parsed when it takes no text, or its tokenizer file is the
    one `served` records (by sha256): every publish of a text model read the served version's
    tokenizer, ~1.5 s and a GET for a 6 MB one (rev12 5)."""
    path = _local_file(manifest, extra_files)
    if path is None or text_input(served) is None:
        return None
    recorded = recorded_sha(served)
    try:
        if recorded is not None and sha256_file(path) == recorded:
            return None
    except OSError:
        return None
    after = local_ids(manifest, extra_files)
    if after is None:
        return None
    return ids_warning(served, stored_ids(reg, served), after, "this version")


def say_callers_moved(reg: Registry, name: str, was: Iterable[str], now: Iterable[str]) -> None:
    """Every CLI alias move (promote, rollback, rollout) says on stderr, once per pair, when
    callers of a version in `was` are moved to one in `now` whose tokenizer reads their ids as
    other tokens, or that reads the features in another order (`alias_move_notes.moves_said`,
    which the control plane's moves answer too). A warning, never a refusal."""
    for note in moves_said(reg, name, was, now):
        print(note, file=sys.stderr)


__all__ = ["callers_on", "local_ids", "published_note", "say_callers_moved"]
