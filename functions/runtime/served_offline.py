"""A served reference whose store is away when it has nothing loaded (a respawned worker, a
restart during an outage): the version its local record names, served from the cache
(functions/runtime/served_record.py), sha256 checked again, until the store answers."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from functions.runtime.errors import AiaasError, StoreUnavailable, StoreUnreachable, public_answer
from functions.runtime.registry import ModelRef
from functions.runtime.routed import Routed
from functions.runtime.served_record import ServedRecords

if TYPE_CHECKING:
    from functions.runtime.pool import ModelPool

log = logging.getLogger("aiaas.runtime")


def served_from_record(
    pool: ModelPool,
    records: ServedRecords,
    ref: ModelRef,
    away: StoreUnreachable | StoreUnavailable,
) -> tuple[Routed, str]:
    """The version recorded for `ref`, from the cache, and why it serves (the store's public
    answer, as a caller may read it); `away` raised when none can."""
    manifest = records.read(ref)
    if manifest is None:
        raise away
    try:
        routed = pool.load_recorded(ref, manifest)
    except AiaasError as exc:  # not in the cache (trimmed, memory-only), or not matching
        log.warning(
            "%s: the store is away and its recorded version %s cannot be served from the "
            "cache either: %s",
            ref,
            manifest.version,
            exc.message,
        )
        raise away from None
    log.warning(
        "%s: the store is away (%s): serving %s, the version it last resolved to here, from "
        "the local cache (sha256 checked) until the store answers",
        ref,
        away.message,
        routed.main.ref,
    )
    return routed, public_answer(away)
