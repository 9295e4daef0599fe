"""Per-container model state: sessions keyed by name+version, alias refresh with a TTL.

A Lambda container (or one `aiaas serve` function instance) holds one `ModelPool`. Loading
happens once per version, and a version stays loaded while it fits (`ModelPool`: a count and
the function's memory; the least recently used goes, with a line, never what an alias
serves); `ServedModel` re-resolves an alias after `AIAAS_ALIAS_TTL` seconds so a promotion
takes effect without a redeploy, and keeps serving the loaded version when a refresh fails
(store down, broken new version). The refresh runs on a background thread; the request that
starts it waits at most `REFRESH_WAIT_S`, so a dead store never stalls serving.

Where the store can tell cheaply that a key changed (the directory store: one stat), every
request checks the keys its resolution read (`RegistryWatch`): a promote or rollback from any
process is served from the next request on, which waits for the new version to load. S3 has
no such check (a HEAD per request is a round trip and a billed call): there the TTL rules.

An alias that splits traffic is served as a `Routed` pair, both versions loaded before it
replaces what was served; each request picks one by hashing its routing key, so one caller
keeps seeing one version (and raising the canary's weight only moves callers onto it).
A shadow version is only named here (its manifest, as the registry resolved it), never loaded:
its copies are replayed in another process (functions/shadow/), which loads it, so the
caller's process spends no memory or cold start on it. One that fails to load there fails
each copy (`aiaas_shadow_errors_total`), never the alias's serving.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from functions.runtime.cache import ArtifactCache
from functions.runtime.errors import AiaasError, ModelUnavailable, NotFound
from functions.runtime.manifest import ModelManifest
from functions.runtime.memory_fit import MB, RUNTIME_MB, load_need, resident_bytes, usable_bytes
from functions.runtime.model import LoadedModel
from functions.runtime.registry import ModelRef, Registry, parse_ref
from functions.runtime.routed import ROUTE_SPACE, RegistryWatch, Routed
from functions.runtime.said_once import SaidOnce
from functions.runtime.settings import RuntimeSettings
from functions.runtime.still_published import StillPublished
from functions.runtime.warming import CanaryWarmer

log = logging.getLogger("aiaas.runtime")

# How long the request that finds the alias TTL expired waits for the refresh.
REFRESH_WAIT_S = 0.5


class ModelPool:
    """Loaded sessions keyed by (name, version): at most `max_versions` (`AIAAS_MAX_VERSIONS`),
    and as many as fit the function's memory (`memory_fit.py`'s estimate against Lambda's
    `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`); the least recently used goes first, never a version an
    alias serves now (its `Routed` holds it: dropping it here would free nothing)."""

    def __init__(
        self,
        registry: Registry,
        cache: ArtifactCache | None = None,
        max_versions: int | None = None,
        settings: RuntimeSettings | None = None,
    ):
        self.registry = registry
        self.settings = settings or RuntimeSettings.from_env()
        self.cache = cache or ArtifactCache(
            registry.store, self.settings.cache_dir, self.settings.transfer
        )
        self.max_versions = self.settings.max_versions if max_versions is None else max_versions
        memory_mb = self.settings.memory_mb
        self.usable_bytes = usable_bytes(memory_mb) if memory_mb else math.inf
        self.evictions = 0  # versions dropped to make room (each reloads on its next request)
        # Told each (name, version) evicted, off the lock: aiaas_model_evictions_total.
        self.on_evict: Callable[[str, str], None] = lambda name, version: None
        self._models: OrderedDict[tuple[str, str], LoadedModel] = OrderedDict()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._serving: dict[ModelRef, tuple[tuple[str, str], ...]] = {}  # by alias: its versions
        self._guard = threading.Lock()
        self._published = StillPublished(registry.store, self.settings.alias_ttl)

    def load(self, manifest: ModelManifest, keep: tuple[str, str] | None = None) -> LoadedModel:
        """The loaded session for `manifest`, fetching and verifying it on first use; `keep`:
        a version not to evict for it (a split's main, loaded just before its canary)."""
        key = (manifest.name, manifest.version)
        with self._guard:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one load per version, however many requests arrive at once
            need = self._peak_need(manifest)
            with self._guard:
                if key in self._models:
                    return self._models[key]
                # before the load: its peak needs it
                evicted = self._make_room(manifest, need, keep)
            for gone in evicted:  # none on nearly every load: nothing to report
                self.on_evict(*gone)
            model = LoadedModel(
                manifest,
                self.cache.source(manifest),
                max_batch_size=self.settings.max_batch or None,
                threads=self.settings.ort_threads or None,
                run_limit_s=self.settings.max_run_seconds,
            )
            with self._guard:
                self._models[key] = model
            self._published.loaded(key)
            log.info("loaded %s:%s from %s", manifest.name, manifest.version, model.path)
            return model

    def _peak_need(self, manifest: ModelManifest) -> float:
        """The memory `manifest`'s load takes at its peak, beyond the runtime's (0: the
        function's memory is unknown, nothing to check it against)."""
        if self.usable_bytes == math.inf:
            return 0.0
        in_memory = self.cache.lands_in_memory(manifest)  # a disk call: not under `_guard`
        return load_need(manifest, in_memory)[0] - RUNTIME_MB * MB

    def _make_room(
        self, manifest: ModelManifest, need: float, keep: tuple[str, str] | None
    ) -> list[tuple[str, str]]:
        """Evict least recently used versions until `manifest` may load: fewer than
        `max_versions` loaded, and its load's peak (`need`) fits beside what stays; the
        versions evicted. Under `_guard`."""
        evicted = []
        kept = sum(resident_bytes(model.manifest) for model in self._models.values())
        serving = {key for keys in self._serving.values() for key in keys}
        if keep is not None:
            serving.add(keep)
        for gone in [key for key in self._models if key not in serving]:  # oldest first
            over_count = len(self._models) >= self.max_versions
            if not over_count and kept + need <= self.usable_bytes:
                break
            why = (
                f"{self.max_versions} versions loaded (AIAAS_MAX_VERSIONS)"
                if over_count
                else f"its load needs ~{need / MB:.0f} MB beside the ~{kept / MB:.0f} MB loaded, "
                f"{self.usable_bytes / MB:.0f} MB usable of the function's memory"
            )
            kept -= resident_bytes(self._models.pop(gone).manifest)
            self.evictions += 1
            evicted.append(gone)
            # A version evicted here loads again on its next request: seconds for a large
            # model, so a line each time (one line a request means the pool thrashes).
            log.warning(
                "evicted %s:%s to load %s:%s: %s",
                *gone,
                manifest.name,
                manifest.version,
                why,
                extra={"evictions": self.evictions},
            )
            # its lock too (one a version ever loaded, for the server's life), unless a load of
            # it is under way: that load's waiters must share its lock. None: a load that looked
            # the lock up before it was dropped loaded it since.
            gone_lock = self._locks.get(gone)
            if gone_lock is not None and not gone_lock.locked():
                del self._locks[gone]
        if kept + need > self.usable_bytes:  # what an alias serves stays: the load goes ahead
            log.warning(
                "loading %s:%s needs ~%.0f MB beside the ~%.0f MB an alias's versions hold, "
                "%.0f MB usable of the function's memory: it may run out (raise MemorySize)",
                manifest.name,
                manifest.version,
                need / MB,
                kept / MB,
                self.usable_bytes / MB,
            )
        return evicted

    def load_version(self, name: str, version: str) -> LoadedModel:
        """`name:version`, loaded; a loaded one is served until pruned (`StillPublished`)."""
        with self._guard:
            loaded = self._models.get((name, version))
            if loaded is not None:
                self._models.move_to_end((name, version))
        if loaded is not None and self._published((name, version)):
            return loaded
        self.forget((name, version))  # pruned (or never loaded): resolved again, a 404 if gone
        return self.load_ref(ModelRef(name, version=version))

    def still_published(self, key: tuple[str, str]) -> bool:
        """Whether a loaded version is still in the registry: a clock comparison, a store
        check once an alias TTL (`StillPublished`); False drops it from the pool."""
        if self._published(key):
            return True
        self.forget(key)
        return False

    def forget(self, key: tuple[str, str]) -> None:
        """Drop a version (pruned): its session and its lock, unless a load of it holds it."""
        with self._guard:
            self._models.pop(key, None)
            lock = self._locks.get(key)
            if lock is not None and not lock.locked():
                del self._locks[key]

    def load_ref(self, ref: ModelRef) -> LoadedModel:
        return self.load(self.registry.resolve(ref))

    def load_routed(self, ref: ModelRef, defer: bool = False) -> Routed:
        """What `ref` serves, both versions loaded when its alias splits traffic; `defer`: a
        canary not loaded yet is named (`Routed.warming`), not loaded, for the caller to load
        off the request path (functions/runtime/warming.py)."""
        found = self.registry.resolve_split(ref)
        main = self.load(found.manifest)
        canary, problem, warming = None, found.problem, None
        if problem is not None:
            log.warning("%s: canary not served: %s", ref, problem)
        if found.canary is not None and defer and not self.has(found.canary):
            warming = found.canary
        elif found.canary is not None:
            try:
                # Its main stays: not yet in `_serving`, it was the least recently used when
                # the alias had moved (what it served before still counts as served).
                main_key = (main.manifest.name, main.manifest.version)
                canary = self.load(found.canary, keep=main_key)
            except Exception as exc:  # a canary that cannot load must not take the alias down
                # Its share goes to the main version, as in a warm container where the failed
                # load leaves the previous state serving; a rollout sees the canary answer
                # nothing and rolls it back. Retried at the next alias check (the TTL).
                problem = exc.message if isinstance(exc, AiaasError) else repr(exc)
                log.warning("%s: canary %s not loaded: %s", ref, found.canary.version, problem)
        shadow = found.shadow  # named, not loaded: replayed elsewhere (see the module's notes)
        cut = round(found.weight * ROUTE_SPACE)
        sample = found.sample if shadow else 0.0
        routed = Routed(main, canary, cut, ref.name, shadow, sample, problem, warming)
        self.serve(ref, routed)
        return routed

    def serve(self, ref: ModelRef, routed: Routed) -> None:
        """What `ref` serves now stays loaded; what it served may go."""
        with self._guard:
            self._serving[ref] = tuple(
                (v.manifest.name, v.manifest.version) for v in routed.versions()
            )

    def has(self, manifest: ModelManifest) -> bool:
        """Whether `manifest`'s version is loaded (a dict lookup: no recency change)."""
        return (manifest.name, manifest.version) in self._models


class ServedModel:
    """The model a function is pinned to: a reference re-resolved at most every `ttl` seconds."""

    def __init__(self, pool: ModelPool, ref: ModelRef | str, ttl: float | None = None):
        self.pool = pool
        self.ref = parse_ref(ref) if isinstance(ref, str) else ref
        self.ttl = pool.settings.alias_ttl if ttl is None else ttl
        self._current: Routed | None = None
        self._watch: RegistryWatch | None = None
        self._next_check = 0.0
        self._refreshing = threading.Lock()
        self.refresh_wait = REFRESH_WAIT_S
        self._restored = False
        self.last_error: str | None = None
        self._refresh_failures = SaidOnce(log)  # a store down for an hour: one line, not 1 a TTL
        self.warmer = CanaryWarmer(pool, self.ref)  # a new canary loads off the request path
        self._swapping = threading.Lock()  # a refresh and the warmer's swap, one at a time

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def loaded(self) -> LoadedModel | None:
        """The main version served now (None before the first load)."""
        current = self._current
        return None if current is None else current.main

    def current(self) -> LoadedModel:
        """The main version to serve now (see `routed`)."""
        return self.routed().main

    def pick(self, routing_key: Callable[[], str | None]) -> LoadedModel:
        """The version that answers one request: the main one, or the canary by weight."""
        return self.routed().pick(routing_key)

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
        current = self._current
        if current is None:
            return self._load_cold()
        if self.ref.version:  # pinned: served until pruned (checked once a TTL, as a request's)
            main = current.main.manifest
            if self.pool.still_published((main.name, main.version)):
                return current
            self._current = None  # answered now as a cold copy is: the 404 naming the prune
            return self._load_cold()
        watch = self._watch
        if self._restored or (watch is not None and watch.changed()):
            return self._refresh_now(current)
        if time.monotonic() < self._next_check:
            return current
        if self._refreshing.acquire(blocking=False):  # warm: one refresher, others keep serving
            self._next_check = time.monotonic() + self.ttl
            refresher = threading.Thread(
                target=self._refresh_and_release, args=(current,), daemon=True
            )
            refresher.start()
            # A healthy store answers well within this; a slow or dead one never holds a request
            # longer (its retries run on in the background while the loaded version serves).
            refresher.join(self.refresh_wait)
        return self._current or current

    def expire(self) -> None:
        """Resolve the reference again on the next request, which waits for it: a restored
        SnapStart snapshot's resolution may be hours old (a slow store must not let the first
        request after a restore be answered by what the snapshot saw)."""
        self._restored = True

    def _load_cold(self) -> Routed:
        with self._refreshing:  # cold: everyone waits for the one load
            if self._current is None:
                self._current = self._resolve_and_load()
                self._next_check = time.monotonic() + self.ttl
                self._restored = False  # just resolved
            return self._current

    def _refresh_now(self, current: Routed) -> Routed:
        # The registry changed under us: this request, and any arriving meanwhile, wait for the
        # new version (a local load), so no request that starts after the change gets the old.
        with self._refreshing:
            watch = self._watch
            if self._restored or (watch is not None and watch.changed()):  # else just refreshed
                self._restored = False
                self._next_check = time.monotonic() + self.ttl
                self._refresh(current)
            return self._current or current

    def version(self, version: str) -> LoadedModel:
        """A specific version of this model (the OIP `/versions/{v}` routes)."""
        for loaded in self.routed().versions():
            if version == loaded.manifest.version:
                return loaded
        return self.pool.load_version(self.ref.name, version)

    def _resolve_and_load(self, defer: bool = False) -> Routed:
        try:
            # Stamped before resolving: a change made while we resolve reads as one next time.
            # No watch while the store fails: the TTL retries, not every request.
            self._watch = None
            self._watch = RegistryWatch.of(self.pool.registry, self.ref)
            model = self.pool.load_routed(self.ref, defer=defer)
        except NotFound:
            raise
        except AiaasError as exc:
            self.last_error = exc.message
            if isinstance(exc, ModelUnavailable):
                raise
            raise ModelUnavailable(f"{self.ref}: {exc.message}") from exc
        if model.warming is None:  # else known once it loads (`_swap`)
            self.last_error = model.problem
        return model

    def _refresh_and_release(self, current: Routed) -> None:
        try:
            self._refresh(current)
        finally:
            self._refreshing.release()

    def _refresh(self, current: Routed) -> None:
        try:
            model = self._resolve_and_load(defer=True)  # something serves: a new canary waits
        except Exception as exc:  # whatever went wrong, the loaded version keeps serving
            reason = exc.message if isinstance(exc, AiaasError) else repr(exc)
            self._refresh_failures.failed(
                f"refresh of {self.ref} failed, still serving {current}: {reason}"
            )
            return
        self._refresh_failures.worked(f"refresh of {self.ref} works again")
        if model != current:
            # The same versions loaded again (the pool evicted them meanwhile) is no change.
            if str(model) != str(current):
                log.info("%s now serves %s (was %s)", self.ref, model, current)
            with self._swapping:
                self._current = model
        if model.warming is not None:
            self.warmer.start(model, self._swap)

    def _swap(self, served: Routed, new: Routed) -> bool:
        with self._swapping:
            if self._current != served:  # the alias moved while the canary loaded
                return False
            self._current, self.last_error = new, new.problem
            return True
