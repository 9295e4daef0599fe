"""The versions of a model that answered rows in a monitor window but are not what the reference
points at now: `aiaas monitor NAME` judges the versions its alias serves today.

After a promote (or a rollback, a pull, a rollout's end) the version that served most of the
window is no longer the alias's: `aiaas monitor churn --window 1h` printed "0 rows served ...
nothing to compare: ... rows of the last interval show later" for the version promoted a minute
ago, and `--fail-on-drift` exited 0, while churn:2 had answered 400 rows of the hour, 186 of
them drifted (hunt_journey3 1). AWS's DriftJob judges every version that flushed in the window;
here each such version is named, with the command that judges it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

from functions.runtime.drift.report import read_window
from functions.runtime.drift.snapshots import PREFIX
from functions.runtime.refs import ModelRef, manifest_key, version_sort_key
from functions.runtime.store_api import ObjectStore


class Elsewhere(NamedTuple):
    """A version not judged that answered rows in the window: how many, and its note."""

    version: str
    rows: int
    note: str


def served_elsewhere(
    store: ObjectStore,
    ref: ModelRef,
    judged: Collection[str],
    span: tuple[float, float, str],
    flags: str,
) -> list[Elsewhere]:
    """A note for each version of `ref`'s model, not in `judged`, whose snapshots in the span
    (since, until, how the report names it) hold rows: how many, and how to judge them. None
    for a pinned version: `NAME:VERSION` asks for that one alone."""
    if ref.version is not None:
        return []
    since, until, said = span
    found = []
    for version in store.list_dirs(f"{PREFIX}/{ref.name}"):  # one listing: the versions counted
        if version in judged:
            continue
        docs = read_window(store, ref.name, version, since, until)
        rows = sum(int(doc.get("rows", 0)) for doc in docs)  # type: ignore[call-overload]
        if rows:
            found.append((version, rows))
    where = f"{ref.name}@{ref.alias}" if ref.alias else f"`{ref.name}`"
    lines = []  # by version: the note on stderr, the line on stdout name them in one order
    for version, rows in sorted(found, key=lambda item: version_sort_key(item[0])):
        served = (
            f"{ref.name}:{version} also answered {rows} rows in {said}, not judged: {where} "
            "does not serve it now (an earlier target, another alias, or callers pinning it)"
        )
        if store.exists(manifest_key(ref.name, version)):
            note = f"{served}; `aiaas monitor {ref.name}:{version} {flags}` judges them"
        else:  # its baseline went with it: nothing to judge the rows against
            note = f"{served}; it was deleted (pruned), its drift baseline with it"
        lines.append(Elsewhere(version, rows, note))
    return lines


def answered_by(name: str, version: str, said: str, others: list[Elsewhere]) -> str:
    """What `aiaas monitor NAME` prints for NAME:VERSION, with no rows in the window (`said`),
    where `others` answered some: who did. It printed "rows of the last interval show later",
    a wait for a flush that never comes (review_rev10 3)."""
    count = sum(other.rows for other in others)
    if len(others) == 1:
        who, notes = f"{name}:{others[0].version}", "the note below"
    else:
        who = ", ".join(f"{name}:{other.version} ({other.rows})" for other in others)
        notes = "the notes below"
    return (
        f"nothing to compare: the {count} rows counted in {said} were answered by {who}, not "
        f"{name}:{version} (see {notes})"
    )
