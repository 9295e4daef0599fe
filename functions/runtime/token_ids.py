"""Whether two versions of a text model read token ids alike, and the warning when not.

Raw text is tokenized by each version's own tokenizer, so a retrain with a new vocabulary
answers text callers right. A client that tokenizes itself (docs/text.md: `GET
/models/{name}/tokenizer`, then token ids) does not: its ids from the old tokenizer are other
tokens in the new one (hunt_journey6 1). The CLI (infra/cli/token_ids_change.py) and the
control plane's alias moves (functions/control/models_api.py) say it; neither refuses.
A version's tokenizer is read only when the manifests record different tokenizer files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from functions.runtime.errors import AiaasError
from functions.runtime.hf_tokenizer import HfTokenizerError, load_tokenizer
from functions.runtime.manifest import ModelManifest
from functions.runtime.registry import Registry
from functions.runtime.text_input import text_input
from functions.runtime.version_extras import read_version_file

SPECIAL = re.compile(r"\[[^\]]*\]|<[^>]*>")  # [PAD], <s>, <|endoftext|>: not a word to name


def token_ids(manifest: ModelManifest, document: bytes) -> dict[str, int] | None:
    """Token -> id of a text model's tokenizer document (tokenizer.json with its added tokens,
    or our vocab.json); None when it cannot be read (a note is never a reason to fail)."""
    # Here, not at the top: the control plane's start (its moves read one rarely) skips it
    from functions.runtime.tokenizer import TokenizerError, Vocabulary

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
        document = read_version_file(reg.store, manifest, file)  # the listed sha256 checked
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
