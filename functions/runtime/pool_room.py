"""Which loaded versions the model pool evicts to make room for a load (functions/runtime/pool.py).

A pure choice over what is loaded, so the pool applies it under its lock and the rule reads in
one place: the least recently used go first, never one an alias serves (its `Routed` holds it:
dropping it would free nothing), until fewer than `AIAAS_MAX_VERSIONS` are loaded and the new
load's peak fits beside what stays in the function's memory (`memory_fit.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from functions.runtime.memory_fit import MB

Key = tuple[str, str]  # (name, version)


@dataclass(frozen=True)
class Room:
    """The versions to evict, oldest first, each with why; `short`: the load's peak still does
    not fit beside what stays (the versions aliases serve), with the figures to say so."""

    evict: list[tuple[Key, str]]
    kept_bytes: float
    short: bool


def make_room(
    loaded: Iterable[tuple[Key, float]],  # (key, resident bytes), least recently used first
    serving: set[Key],
    need: float,
    max_versions: int,
    usable: float,
    loading: Iterable[float] = (),  # the resident bytes of other loads under way
) -> Room:
    """What to evict so that a load needing `need` bytes at its peak may go ahead (`need` 0
    and `max_versions` one more: what to evict so that no more than that are loaded). Loads
    under way count as loaded: each made room for itself alone, so N first requests for N
    versions at once all went ahead (4 loaded of AIAAS_MAX_VERSIONS=2)."""
    loaded, loading = list(loaded), list(loading)
    count = len(loaded) + len(loading)
    kept = sum(size for _, size in loaded) + sum(loading)
    evict = []
    for key, size in loaded:
        if key in serving:
            continue
        over_count = count >= max_versions
        if not over_count and kept + need <= usable:
            break
        why = (
            f"{max_versions} versions loaded (AIAAS_MAX_VERSIONS)"
            if over_count
            else f"its load needs ~{need / MB:.0f} MB beside the ~{kept / MB:.0f} MB loaded, "
            f"{usable / MB:.0f} MB usable of the function's memory"
        )
        evict.append((key, why))
        count -= 1
        kept -= size
    return Room(evict, kept, kept + need > usable)
