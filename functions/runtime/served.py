"""The model a function serves (`ServedModel`): a reference (`name@alias` or `name:version`)
resolved and loaded through the function's `ModelPool` (functions/runtime/pool.py), re-resolved
when its alias changes.

`ServedModel` re-resolves an alias after `AIAAS_ALIAS_TTL` seconds so a promotion takes effect
without a redeploy, and keeps serving the loaded version when a refresh fails (store down,
broken new version). The refresh runs on a background thread; the request that starts it waits
at most `REFRESH_WAIT_S`, so a dead store never stalls serving. When the TTL had long passed
(a copy nobody called for a while), requests arriving during that refresh wait for it too, as
long: before, they were answered by what the alias said before the idle time (a version
rolled back a minute earlier, at a TTL of 2 s). Where the store can tell cheaply
that a key changed (the directory store: one stat), every request checks the keys its
resolution read (`RegistryWatch`) and waits for the new version to load; on S3 the TTL rules.
A new canary is loaded off the request path (functions/runtime/warming.py).

Each version the reference resolves to in the store is recorded beside the cache once loaded
(functions/runtime/served_record.py). A copy with nothing loaded yet that finds the store away
(a respawned worker, a restart during an outage) serves the recorded version from the cache,
sha256 checked again, says so (`offline`: the model's ready answer names it), and goes back
to the alias at the first refresh (the TTL) the store answers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from functions.runtime.errors import (
    AiaasError,
    ModelNotFound,
    ModelUnavailable,
    NotFound,
    StoreUnavailable,
    StoreUnreachable,
    VersionPruned,
)
from functions.runtime.manifest import ModelManifest
from functions.runtime.model import LoadedModel
from functions.runtime.registry import ModelRef, parse_ref
from functions.runtime.routed import RegistryWatch, Routed
from functions.runtime.said_once import SaidOnce
from functions.runtime.served_offline import served_from_record
from functions.runtime.served_record import ServedRecords
from functions.runtime.unpublished import RememberedNotFound
from functions.runtime.warming import CanaryWarmer

if TYPE_CHECKING:
    from functions.runtime.pool import ModelPool

log = logging.getLogger("aiaas.runtime")

# How long the request that finds the alias TTL expired waits for the refresh.
REFRESH_WAIT_S = 0.5
LOOKED_FRESH_S = 0.01  # `varies_next` looked at the alias record for the call that runs next


class ServedModel:
    """The model a function is pinned to: a reference re-resolved at most every `ttl` seconds."""

    def __init__(self, pool: ModelPool, ref: ModelRef | str, ttl: float | None = None):
        self.pool = pool
        self.ref = parse_ref(ref) if isinstance(ref, str) else ref
        self.name = self.ref.name  # the model's name (read twice a request: no property)
        self.ttl = pool.settings.alias_ttl if ttl is None else ttl
        self._current: Routed | None = None
        self._watch: RegistryWatch | None = None
        self._next_check = 0.0
        self._refreshing = threading.Lock()
        self.refresh_wait = REFRESH_WAIT_S
        # The 404 a cold load found (the model deleted, no such alias): (until when, the watch
        # over the keys it read, its message), answered from memory until then or a change: a
        # model deleted by hand read the store twice a call (its alias, its versions).
        self._missing: tuple[float, RegistryWatch | None, str] | None = None
        # While a refresh runs that found the TTL long past (the copy idle): until when requests
        # wait for it (that refresh's start + `refresh_wait`); None otherwise.
        self._overdue_until: float | None = None
        self._restored = False
        # When `varies_next` last read the alias record unchanged, for the call it runs next
        # (0: not since the last call): a look older than LOOKED_FRESH_S is not taken.
        self._looked: tuple[float, int] | None = None  # (when, by which thread)
        self.last_error: str | None = None
        self._refresh_failures = SaidOnce(log)  # a store down for an hour: one line, not 1 a TTL
        self.warmer = CanaryWarmer(pool, self.ref)  # a new canary loads off the request path
        self._swapping = threading.Lock()  # a refresh and the warmer's swap, one at a time
        store, endpoint = pool.registry.store.uri, pool.settings.s3_endpoint
        self.records = ServedRecords(pool.cache.directory, store, endpoint)
        # While the recorded version serves (the store away since the start): why, as a
        # caller may read it (the store's public answer); None once the store answered.
        self.offline: str | None = None

    @property
    def loaded(self) -> LoadedModel | None:
        """The main version served now (None before the first load)."""
        current = self._current
        return None if current is None else current.main

    @property
    def varies_next(self) -> bool:
        """Whether the version that answers the next request may cost more on some request
        values than on others (a Loop, a size read from a value: functions/runtime/
        input_cost.py); asked by `aiaas serve` BEFORE the call, to run it off its event loop.
        True too where the call would resolve the alias again (its record changed, the TTL
        passed, a refresh after an idle time running, nothing loaded yet): it may load a new version, and answer with it."""
        current = self._current  # read on every request: no generator
        if current is None or self._restored:
            return True
        overdue_until = self._overdue_until  # a call now would wait for the refresh: not inline
        if overdue_until is not None and time.monotonic() < overdue_until:
            return True
        canary = current.canary
        if current.main.cost.varies or (canary is not None and canary.cost.varies):
            return True
        if not self.ref.version:
            if time.monotonic() >= self._next_check:
                return True
            watch = self._watch
            if watch is not None:
                if watch.changed():
                    return True
                # the call runs next on this thread (inline): no second read
                self._looked = (time.monotonic(), threading.get_ident())
        return False

    def version_varies(self, version: str) -> bool:
        """`varies_next` of a pinned `version` (a version's graph never changes); True while it
        is not loaded here: its load, and the call, go off the loop."""
        loaded = self.pool.loaded_model((self.name, version))
        return True if loaded is None else loaded.cost.varies

    def current(self) -> LoadedModel:
        """The main version to serve now (see `routed`); its 503 when it failed to load while
        the alias's canary answers its own share (`Routed.broken`)."""
        routed = self.routed()
        if routed.broken is not None:
            raise routed.main_not_served()
        return routed.main

    def pick(self, routing_key: Callable[[], str | None]) -> LoadedModel:
        """The version that answers one request: the main one, or the canary by weight."""
        routed = self.routed()
        if routed.canary is None and routed.broken is None:
            return routed.main
        return routed.pick(routing_key)

    @property
    def shadow(self) -> tuple[ModelManifest, float] | None:
        """(the shadow version's manifest, its sample rate) now; None without one."""
        current = self._current
        if current is None or current.shadow is None:
            return None
        return current.shadow, current.sample

    def routed(self) -> Routed:
        """What to serve now; loads on first use, refreshes aliases when their record
        changes (where the store tells cheaply) or after the TTL."""
        # The watch before the model: a refresh publishes them the other way round (`_refresh`),
        # so a request that reads the new watch reads the new model too.
        watch = self._watch
        current = self._current
        if current is None:
            return self._load_cold()
        if self.ref.version:  # pinned: served until pruned (checked once a TTL, as a request's)
            main = current.main.manifest
            if self.pool.still_published((main.name, main.version)):
                return current
            self._current = None  # answered now as a cold copy is: the 404 naming the prune
            return self._load_cold()
        # Unless `varies_next` read it unchanged just before this call (`aiaas serve`, on the
        # loop's thread, the call run at once there): the record is read once a request.
        # Only the call the look was made for takes it: on its thread (an offloaded call
        # paused since its own read took the loop's, and answered a promotion stale), and
        # fresh (a call that failed before this line left its look behind, hours ago maybe).
        looked = self._looked
        fresh = False
        if looked is not None and looked[1] == threading.get_ident():
            self._looked = None
            fresh = time.monotonic() - looked[0] < LOOKED_FRESH_S
        if self._restored or (watch is not None and not fresh and watch.changed()):
            return self._refresh_now(current)
        checked = self._next_check
        if time.monotonic() < checked:
            overdue_until = self._overdue_until
            if overdue_until is None:
                return current
            self._wait_for_refresh(overdue_until)
        elif self._refreshing.acquire(blocking=False):  # warm: one refresher, others keep serving
            started = time.monotonic()
            if started > checked + self.refresh_wait:
                # Idle past the TTL: what it serves may have been superseded long ago (an alias
                # promoted, or rolled back, while nobody called). Requests arriving during this
                # refresh wait for it as this one does; set before `_next_check` moves on.
                self._overdue_until = started + self.refresh_wait
            self._next_check = started + self.ttl
            refresher = threading.Thread(
                target=self._refresh_and_release, args=(current,), daemon=True
            )
            refresher.start()
            # A healthy store answers well within this; a slow or dead one never holds a request
            # longer (its retries run on in the background while the loaded version serves).
            refresher.join(self.refresh_wait)
        elif time.monotonic() > checked + self.refresh_wait:  # overdue, its refresh just begun
            self._wait_for_refresh(time.monotonic() + self.refresh_wait)
        now = self._current
        return now if now is not None else self._load_cold()  # None: gone (`_gone`): its 404

    def _wait_for_refresh(self, deadline: float) -> None:
        """Wait, until `deadline` at most, for the refresh running now (it holds the lock)."""
        remaining = deadline - time.monotonic()
        if remaining > 0 and self._refreshing.acquire(timeout=remaining):
            self._refreshing.release()

    def expire(self) -> None:
        """Resolve the reference again on the next request, which waits for it: a restored
        SnapStart snapshot's resolution may be hours old (a slow store must not let the first
        request after a restore be answered by what the snapshot saw): its 404s too, which a
        restored clock may hold for a TTL more (a model published since the snapshot)."""
        self._restored = True
        self._missing = None
        self.pool.unpublished.clear()

    def _load_cold(self) -> Routed:
        missing = self._missing
        if missing is not None:
            until, watch, message = missing
            if time.monotonic() < until and (watch is None or not watch.changed()):
                raise RememberedNotFound(message)
        with self._refreshing:  # cold: everyone waits for the one load
            if self._current is None:
                seen = self.records.seen(self.ref)  # before the read that may find it gone
                try:
                    self._current, self._watch = self._resolve_and_load()
                except (StoreUnreachable, StoreUnavailable) as away:
                    self._current = self._from_record(away)
                except NotFound as exc:
                    self.records.forget(self.ref, seen)
                    if not self.ref.version:  # a pinned version's 404: the pool remembers it
                        self._missing = (time.monotonic() + self.ttl, self._watch, exc.message)
                    raise
                else:
                    self._missing = None
                    self._record(self._current)
                self._next_check = time.monotonic() + self.ttl
                self._restored = False  # just resolved
            return self._current

    def _record(self, routed: Routed) -> None:
        """Record the main version `routed` serves, resolved in the store just now; not one
        held in memory (the cache unusable): it could not be served from the cache."""
        if not routed.main.in_memory and routed.broken is None:  # else `main` is the canary
            self.records.write(self.ref, routed.main.manifest)

    def _from_record(self, away: StoreUnreachable | StoreUnavailable) -> Routed:
        """The version recorded for the reference, from the cache (`away` when none serves)."""
        routed, self.offline = served_from_record(self.pool, self.records, self.ref, away)
        return routed

    def _refresh_now(self, current: Routed) -> Routed:
        # The registry changed under us: this request, and any arriving meanwhile, wait for the
        # new version (a local load), so no request that starts after the change gets the old.
        with self._refreshing:
            watch = self._watch
            if self._restored or (watch is not None and watch.changed()):  # else just refreshed
                self._restored = False
                self._next_check = time.monotonic() + self.ttl
                self._refresh(current)
            now = self._current
        # None: the model is gone from the store (`_gone`): this request gets the 404 a cold
        # copy answers, not the version it served from memory.
        return now if now is not None else self._load_cold()

    def version(self, version: str) -> LoadedModel:
        """A specific version of this model (the `/versions/{v}` routes). Only that version is
        loaded: the selected one (latest or alias) is reused when already loaded, never loaded
        here, so a damaged newest version cannot answer 503 for pinned callers of a healthy one
        (how a user checks an older version, or rolls back by pinning, after a bad publish)."""
        current = self._current
        for loaded in () if current is None else current.versions():
            key = (loaded.manifest.name, loaded.manifest.version)
            if version == key[1] and self.pool.still_published(key):
                return loaded
        try:
            return self.pool.load_version(self.ref.name, version)
        except (VersionPruned, RememberedNotFound):
            raise  # its own 404, remembered (no store read a request)
        except NotFound:
            if current is None:  # no version of the model at all: its own 404, as unpinned
                key = (self.ref.name, version)
                stamp = self.pool.unpublished.stamp(key)  # before the listing that finds none
                try:
                    self.pool.registry.versions(self.ref.name)  # ModelNotFound when none
                except ModelNotFound as exc:  # remembered as the version's own 404 is
                    self.pool.unpublished.remember(key, exc.message, stamp)
                    raise
            raise

    def _resolve_and_load(self, defer: bool = False) -> tuple[Routed, RegistryWatch | None]:
        """The reference resolved and loaded, and the watch over the keys it read, for the
        caller to publish once the model is `_current`. Published before, a request arriving
        during the load found it unchanged and was answered by the old version (for the whole
        load of a new main version: up to seconds after a promote returned). A failure
        publishes it here: the loaded version serves on, and requests do not all try again."""
        watch: RegistryWatch | None = None  # none while the store fails: the TTL retries
        model: Routed | None = None
        try:
            # Stamped before resolving: a change made while we resolve reads as one next time.
            watch = RegistryWatch.of(self.pool.registry, self.ref)
            model = self.pool.load_routed(self.ref, defer=defer)
        except NotFound:
            raise
        except AiaasError as exc:
            self.last_error = exc.message
            if isinstance(exc, ModelUnavailable):
                raise
            raise ModelUnavailable(f"{self.ref}: {exc.message}") from exc
        finally:
            if model is None:
                self._watch = watch
        if model.warming is None:  # else known once it loads (`_swap`)
            self.last_error = model.problem
        return model, watch

    def _refresh_and_release(self, current: Routed) -> None:
        try:
            self._refresh(current)
        finally:
            self._overdue_until = None
            self._refreshing.release()

    def _refresh(self, current: Routed) -> None:
        try:
            model, watch = self._resolve_and_load(defer=True)  # a new canary waits: main serves
        except NotFound as exc:
            if self._gone():
                return
            self._refresh_failures.failed(
                f"refresh of {self.ref} failed, still serving {current}: {exc.message}"
            )
            return
        except Exception as exc:  # whatever went wrong, the loaded version keeps serving
            reason = exc.message if isinstance(exc, AiaasError) else repr(exc)
            self._refresh_failures.failed(
                f"refresh of {self.ref} failed, still serving {current}: {reason}"
            )
            return
        self._refresh_failures.worked(f"refresh of {self.ref} works again")
        self._record(model)
        if self.offline is not None:
            self.offline = None
            log.warning(
                "%s: the store answers again: serving %s, as its alias says", self.ref, model
            )
        if model != current:
            # The same versions loaded again (the pool evicted them meanwhile) is no change.
            if str(model) != str(current):
                log.info("%s now serves %s (was %s)", self.ref, model, current)
            with self._swapping:
                self._current = model
        # Only now: requests that saw the change meanwhile wait in `_refresh_now` for the lock
        # this refresh holds, then find the watch unchanged and serve `model`.
        self._watch = watch
        if model.warming is not None:
            self.warmer.start(model, self._swap)

    def _gone(self) -> bool:
        """Whether the model itself is no longer in the store (every version deleted by hand:
        there is no delete command), and if so, stop serving it: the next request resolves
        it again and answers the 404 a cold copy gives. A warm copy served it on and on."""
        seen = self.records.seen(self.ref)  # before the read that finds it gone
        try:
            if self.pool.registry.versions(self.ref.name, missing_ok=True):
                return False
        except AiaasError:  # cannot tell (the store failing): keep serving
            return False
        log.warning("%s is no longer in the store: not served from now on", self.ref)
        self.records.forget(self.ref, seen)
        with self._swapping:
            current, self._current = self._current, None
        for loaded in current.versions() if current is not None else ():
            self.pool.forget((loaded.manifest.name, loaded.manifest.version))
        return True

    def _swap(self, served: Routed, new: Routed) -> bool:
        with self._swapping:
            if self._current != served:  # the alias moved while the canary loaded
                return False
            self._current, self.last_error = new, new.problem
            return True
