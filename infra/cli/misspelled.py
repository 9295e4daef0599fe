"""The word a user meant: `aiaas modles`, `aiaas rollout statsu iris`, `aiaas capture exprot`."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def meant(typed: str, words: Iterable[str]) -> str | None:
    """The one of `words` `typed` is a slip of, if one is close (a ratio of 0.75: `modles`,
    `statsu`, `rollut`; not `nope`, which is no command's slip)."""
    found = difflib.get_close_matches(typed, list(words), n=1, cutoff=0.75)
    return found[0] if found else None
