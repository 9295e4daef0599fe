"""Bounds on the list routes: at most `limit` items, from after `after`; `next` is the `after`
of the following page (None on the last). An HTTP API answers within 30 s and a Lambda answer
holds at most 6 MB: a model with thousands of versions, or of batch jobs (each job's status is
two store reads), must come back in pages rather than time out."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query

MAX_LIMIT = 1000
T = TypeVar("T")

After = Annotated[
    str | None, Query(description="start after this item (a page's `next`); default: the first")
]


def limit_of(default: int) -> Any:
    """A `limit` query parameter: 1 to MAX_LIMIT items, `default` when not given."""
    return Query(default, ge=1, le=MAX_LIMIT, description=f"items per page (1-{MAX_LIMIT})")


def page(
    items: Sequence[T], after: T | None, limit: int, key: Callable[[T], Any] = lambda x: x
) -> tuple[list[T], T | None]:
    """(the items after `after` in `items`, sorted by `key`, up to `limit`; the next cursor).
    `after` need not be one of them (it may have gone since): the page starts past where it
    would sort."""
    start = 0 if after is None else bisect.bisect_right(items, key(after), key=key)
    found = list(items[start : start + limit])
    more = start + limit < len(items)
    return found, (found[-1] if more and found else None)
