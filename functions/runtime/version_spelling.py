"""Versions are matched as written: `02` names a version spelled `02`, never version `2`.

Publishing counts `02` as 2 (a twin of `2` is refused: publishing.check_no_twin), so a user who
writes `m:02`, `promote m 02`, `rollback --to 02`, `/models/m/versions/02/...` or an alias PUT of
`{"version": "02"}` may mean the published `2`. Every entry point refuses it (a 404 as any
missing version, a rollback's 409): none acts on another version than the one named, as serving
`2` to a caller pinned to `02` would be if `02` were published later (it cannot be, being a twin,
but a store written before the twin check may hold both). The refusal names the spelling that
exists, so the caller need not guess why a version they can see in `aiaas versions` is "not
found".
"""

from __future__ import annotations

from collections.abc import Iterable


def same_number(version: str, versions: Iterable[str]) -> list[str]:
    """Those of `versions` that are `version`'s number spelled otherwise (`2` for `02`)."""
    if not version.isdigit():
        return []
    return [v for v in versions if v.isdigit() and v != version and int(v) == int(version)]


def spelled_otherwise(name: str, version: str, versions: Iterable[str]) -> str:
    """What a refusal of `name:version` adds when `versions` spell its number otherwise
    ("" when none does): the spelling to use, and the rule."""
    others = same_number(version, versions)
    if not others:
        return ""
    named = " and ".join(f"{name}:{v}" for v in others)
    return (
        f"; versions are matched as written, and version {int(version)} of {name!r} is "
        f"{named}: name it as written"
    )
