"""Publishing a run's objects so that the newest version of its input always has the last word.

A run checks that its input is unchanged, then publishes summary ("publishing"), output, errors
and summary (finished). A new upload can land between the check and those writes, and its run
can finish first: unguarded, the older run's writes then landed over the newer run's, leaving
outputs of the old bytes under a summary that names the new ones. So every write here is
conditional on the object's version (S3's If-Match / If-None-Match and conditional delete; the
directory store compares under a per-key lock), and the versions are read *before* the input is
checked. A run whose check passed read them before the input was replaced, so before the newer
version's run wrote anything: once that run has written an object, no write of the older run to
it can land. When the older run writes first, the newer run's write is refused instead; it reads
the versions again and publishes again (its staged objects are still there), losing only to the
few writes the older run made. The older run, refused, finds its input replaced and stops.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from functions.runtime.errors import AiaasError, StoreError
from functions.runtime.store import ObjectChanged, ObjectStore

log = logging.getLogger("aiaas.batch")

PUBLISH_TRIES = 6  # a newer run loses at most one try to each of an older run's four writes

# One write of a publication: the object's key, and what writes it given the version it must
# still be (None: absent), answering the object's new version (None: deleted).
Write = tuple[str, Callable[[str | None], str | None]]


class InputReplaced(AiaasError):
    """The input object changed while it was scored: the run must not publish."""


def commit(
    store: ObjectStore,
    check: Callable[[], None],
    writes: Sequence[Write],
    done: Callable[[], bool],
    what: str,
) -> None:
    """Run `writes` in order, each only while its object is the version read before `check`
    (which raises InputReplaced when the input changed). Refused: read the versions and check
    again, unless `done()` says a delivery of this very run committed meanwhile."""
    for _ in range(PUBLISH_TRIES):
        versions = {key: store.version(key) for key in dict.fromkeys(key for key, _ in writes)}
        check()
        try:
            for key, write in writes:
                versions[key] = write(versions[key])
            return
        except ObjectChanged as exc:
            log.info("publishing %s: %s; reading the versions again", what, exc.message)
        if done():
            return
    raise StoreError(f"the outputs of {what} kept changing while it published them; it is retried")


def deletes(store: ObjectStore, key: str) -> Write:
    """Deleting `key` as one write of a publication (absent already: nothing to do)."""

    def delete(expect: str | None) -> None:
        if expect is not None:
            store.delete(key, if_version=expect)

    return key, delete


def puts(store: ObjectStore, key: str, data: Callable[[], bytes]) -> Write:
    """Writing `data()` to `key` as one write of a publication."""

    def put(expect: str | None) -> str:
        with store.open_staged(key) as staged:
            staged.file.write(data())
            return staged.publish(expect)

    return key, put
