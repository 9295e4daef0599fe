"""A warning when a text model's version reads token ids as other tokens than the version its
callers are on.

Raw text is tokenized by each version's own tokenizer, so a retrain with a new vocabulary
answers text callers right. A client that tokenizes itself (docs/text.md: `GET
/models/{name}/tokenizer`, then token ids) does not: its ids from the old tokenizer are other
tokens in the new one. A BPE retrain of a WordPiece model was published, canaried, rolled out
to 100% and promoted without a word, while 73 of 200 such rows got another label with a 200
and 84 a 422 (hunt_journey6 1). Refusing would stop the raw-text retrain too, so publish,
promote and rollout say it, naming a token whose id moved.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from functions.runtime.aliases import AliasTarget
from functions.runtime.errors import AiaasError
from functions.runtime.file_hashes import sha256_file
from functions.runtime.hf_tokenizer import HfTokenizerError, load_tokenizer
from functions.runtime.manifest import ModelManifest
from functions.runtime.refs import DEFAULT_ALIAS, version_prefix
from functions.runtime.registry import Registry
from functions.runtime.rollout.same_answers import reorder_warning
from functions.runtime.text_input import text_input
from functions.runtime.tokenizer import TokenizerError, Vocabulary

SPECIAL = re.compile(r"\[[^\]]*\]|<[^>]*>")  # [PAD], <s>, <|endoftext|>: not a word to name


def token_ids(manifest: ModelManifest, document: bytes) -> dict[str, int] | None:
    """Token -> id of a text model's tokenizer document (tokenizer.json with its added tokens,
    or our vocab.json); None when it cannot be read (a note is never a reason to fail)."""
    try:
        if manifest.preprocessing.get("tokenizer") == "huggingface":
            vocab = load_tokenizer(document.decode()).get_vocab(with_added_tokens=True)
            return {str(token): int(index) for token, index in vocab.items()}
        return {token: i for i, token in enumerate(Vocabulary.from_json(document).tokens)}
    except (HfTokenizerError, TokenizerError, UnicodeDecodeError, ValueError, TypeError):
        return None


def stored_ids(reg: Registry, manifest: ModelManifest) -> dict[str, int] | None:
    """Token -> id of a published text version's tokenizer (its file in the store), else None."""
    file = manifest.preprocessing.get("vocab_file")
    if text_input(manifest) is None or not isinstance(file, str):
        return None
    try:
        document = reg.store.get_bytes(f"{version_prefix(manifest.name, manifest.version)}/{file}")
    except (AiaasError, OSError):
        return None
    return token_ids(manifest, document)


def recorded_sha(manifest: ModelManifest) -> str | None:
    """The sha256 a text version's manifest records for its tokenizer file, else None (a
    version that takes no text, or a manifest from before versions listed their files)."""
    file = manifest.preprocessing.get("vocab_file")
    if text_input(manifest) is None or not isinstance(file, str):
        return None
    return next((f.sha256 for f in manifest.files if f.path == file), None)


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


def moved(before: Mapping[str, int], after: Mapping[str, int]) -> str | None:
    """How `after` reads the ids `before` gives (a token whose id moved, a word rather than a
    special token such as `[PAD]` where one moved), else None: the same ids, or more tokens
    after the old ones (an extended vocabulary), read alike."""
    apart = [
        (t, i) for t, i in sorted(before.items(), key=lambda item: item[1]) if after.get(t) != i
    ]
    if not apart:
        return None
    words = [(t, i) for t, i in apart if not SPECIAL.fullmatch(t)]
    token, index = (words or apart)[0]
    now = after.get(token)
    where = "not in this one" if now is None else f"{now} here"
    return (
        f"{json.dumps(token, ensure_ascii=False)} is {index} there, {where}; "
        f"{len(before)} tokens there, {len(after)} here"
    )


def ids_warning(
    base: ModelManifest, before: Mapping[str, int] | None, after: Mapping[str, int] | None, to: str
) -> str | None:
    """The warning for callers of `base` moved to `to` (a version, or "this version"), whose
    tokenizer gives `after`; None when the ids read alike or either cannot be read."""
    if before is None or after is None:
        return None
    how = moved(before, after)
    if how is None:
        return None
    name = base.name
    return (
        f"warning: {to} of {name} reads token ids as other tokens than {name}:{base.version} "
        f"({how}): raw text is tokenized by each version's own tokenizer, but a client that "
        f"sends ids made with {base.version}'s (GET /models/{name}/tokenizer) gets wrong answers "
        "with a 200, or a 422 for an id past the vocabulary: have such clients send raw text, "
        f"or fetch GET /models/{name}/versions/VERSION/tokenizer and call that version's "
        "/versions/VERSION/ routes, before a canary, rollout or promote moves them"
    )


def callers_moved_note(reg: Registry, name: str, base: str, to: str) -> str | None:
    """The warning when callers of version `base` of `name` are moved to version `to`."""
    try:
        old, new = reg.manifest(name, base), reg.manifest(name, to)
    except AiaasError:
        return None
    if text_input(old) is None or text_input(new) is None:
        return None  # no tokenizer downloaded for a version that takes no text
    recorded = recorded_sha(old)
    if recorded is not None and recorded == recorded_sha(new):
        return None  # the same tokenizer file, by the manifests' records: nothing read
    after = stored_ids(reg, new)
    return None if after is None else ids_warning(old, stored_ids(reg, old), after, f"version {to}")


def callers_on(reg: Registry, name: str, alias: str, target: AliasTarget | None) -> list[str]:
    """The versions that answer `name@alias`'s callers: its version and canary; with no alias
    record, the default alias's callers are the bare name's, on the newest version (a first
    `promote` moves them off it), and a named alias has none."""
    if target is not None:
        return [v for v in (target.version, target.canary) if v is not None]
    if alias != DEFAULT_ALIAS:
        return []
    try:
        return [reg.listing(name).newest.version]
    except AiaasError:  # none readable: a note, never a reason to fail the move
        return []


def say_callers_moved(reg: Registry, name: str, was: Iterable[str], now: Iterable[str]) -> None:
    """Every CLI alias move (promote, rollback, rollout) says on stderr, once per pair, when
    callers of a version in `was` are moved to one in `now` whose tokenizer reads their ids as
    other tokens: back to the version a rollback restores too, whose ids the clients that
    followed the first warning no longer send (rev12 2); or that reads the features in another
    order (`order_note`). A warning, never a refusal."""
    said: set[frozenset[str]] = set()  # a split's weights changed: once, not both ways
    for old in dict.fromkeys(was):
        for new in dict.fromkeys(now):
            pair = frozenset((old, new))
            if old == new or pair in said:
                continue
            said.add(pair)
            for note in (callers_moved_note(reg, name, old, new), order_note(reg, name, old, new)):
                if note is not None:
                    print(note, file=sys.stderr)


def order_note(reg: Registry, name: str, old: str, new: str) -> str | None:
    """The warning when callers of version `old` are moved to `new`, which reads the same
    features in another order: a promote without --weight took it with no word, while a canary
    or rollout of it is refused (rev14 2)."""
    try:
        said = reorder_warning(name, reg.manifest(name, old), reg.manifest(name, new))
    except AiaasError:  # a note, never a reason to fail the move
        return None
    return None if said is None else f"warning: {said}"
