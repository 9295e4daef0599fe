"""Per-container model state: sessions keyed by name+version (`ModelPool`).

A Lambda container (or one `aiaas serve` function instance) holds one `ModelPool`; what it
serves is a `ServedModel` over it (functions/runtime/served.py: alias refresh with a TTL).
Loading happens once per version, and a version stays loaded while it fits (a count and the
function's memory; the least recently used goes, with a line, never what an alias serves:
functions/runtime/pool_room.py). Every load, wherever it comes from (a cold start, a canary
warmed off the request path, a pinned version, a version loaded again after an eviction), goes
through `ModelPool.load`, which tells `on_load` its outcome and duration
(`aiaas_model_loads_total`, `aiaas_model_load_duration_seconds`).

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
from dataclasses import replace
from pathlib import Path

from functions.runtime.cache import ArtifactCache
from functions.runtime.errors import AiaasError, ModelNotFound, ModelUnavailable, VersionPruned
from functions.runtime.loaded_as_read import loaded_from
from functions.runtime.main_broken import canary_alone
from functions.runtime.manifest import ModelManifest
from functions.runtime.memory_fit import (
    HEADROOM,
    MB,
    RUNTIME_MB,
    load_need,
    local_layout,
    resident_bytes,
    usable_bytes,
)
from functions.runtime.model import LoadedModel
from functions.runtime.model_in_memory import ModelInMemory, ModelSource
from functions.runtime.pool_churn import EvictionChurn
from functions.runtime.pool_room import make_room
from functions.runtime.refs import Resolution
from functions.runtime.registry import ModelRef, Registry
from functions.runtime.routed import ROUTE_SPACE, Routed
from functions.runtime.said_once import SaidOnceEach
from functions.runtime.settings import RuntimeSettings
from functions.runtime.still_published import StillPublished
from functions.runtime.unpublished import Unpublished

log = logging.getLogger("aiaas.runtime")

LOADED, LOAD_FAILED = "loaded", "failed"  # the outcomes `on_load` is told
# ... and a version loaded from the cache by its local record while the store is away
# (functions/runtime/served_record.py): aiaas_model_loads_total{outcome="local_record"}.
LOCAL_RECORD = "local_record"
# ... and a version loaded again soon after its eviction (churn: functions/runtime/pool_churn.py).
RELOADED = "reloaded"


def _no_report(name: str, version: str, outcome: str, seconds: float) -> None:
    """`on_load` until a function's metrics take it (functions/predict/service.py)."""


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
        if self.usable_bytes == 0:  # said once here, not as "0 MB usable" on every load alone
            log.warning(
                "a function of %d MB has no memory for models beside the ~%d MB the runtime "
                "takes and %d%% headroom: each load evicts every version no alias serves, and "
                "it may run out; raise MemorySize (%d MB leaves 10 MB)",
                memory_mb,
                RUNTIME_MB,
                round(HEADROOM * 100),
                math.ceil((RUNTIME_MB + 10) / (1 - HEADROOM)),
            )
        self.evictions = 0  # versions dropped to make room (each reloads on its next request)
        self.churn = EvictionChurn(log, self.max_versions)  # those loaded again soon: a WARNING
        # Told each (name, version) evicted, off the lock: aiaas_model_evictions_total.
        self.on_evict: Callable[[str, str], None] = lambda name, version: None
        # Told each load's (name, version, outcome, seconds), off the lock: every load goes
        # through `load` (a cold start, a canary warmed off the request path, a pinned version,
        # one loaded again after an eviction): aiaas_model_loads_total and its duration.
        self.on_load: Callable[[str, str, str, float], None] = _no_report
        self._models: OrderedDict[tuple[str, str], LoadedModel] = OrderedDict()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._loading: dict[tuple[str, str], float] = {}  # loads under way: resident bytes
        # What the loaded versions' packed copies add past their weights (WeightLayout.padding)
        self._padding: dict[tuple[str, str], int] = {}
        self._serving: dict[ModelRef, tuple[tuple[str, str], ...]] = {}  # by alias: its versions
        self._guard = threading.Lock()
        self.routing_said = SaidOnceEach(log)  # a served alias's canary or shadow not served
        self._published = StillPublished(registry.store, self.settings.alias_ttl)
        self.unpublished = Unpublished(registry.store, self.settings.alias_ttl)

    def load(
        self, manifest: ModelManifest, keep: tuple[str, str] | None = None, outcome: str = LOADED
    ) -> LoadedModel:
        """The loaded session for `manifest`, fetching and verifying it on first use; `keep`:
        a version not to evict for it (a split's main, loaded just before its canary);
        `outcome`: what `on_load` is told when it loads."""
        key = (manifest.name, manifest.version)
        with self._guard:
            held, dropped = loaded_from(self._models, self._padding, manifest)
            if held is not None:
                self._models.move_to_end(key)
                return held
            lock = self._locks.setdefault(key, threading.Lock())
        if dropped is not None:  # loaded from another manifest (loaded_as_read.py)
            self.cache.release(dropped)
        with lock:  # one load per version, however many requests arrive at once
            return self._load_now(manifest, keep, outcome)

    def _load_now(
        self, manifest: ModelManifest, keep: tuple[str, str] | None, outcome: str
    ) -> LoadedModel:
        """`load`'s work under the version's lock; every load, whatever asked for it, tells
        `on_load` its outcome and seconds (a request that loads nothing never gets here)."""
        key = (manifest.name, manifest.version)
        start = time.perf_counter()
        try:
            with self._guard:
                held, dropped = loaded_from(self._models, self._padding, manifest)
                if held is not None:  # loaded while we waited for the lock: not a load
                    return held
            if dropped is not None:
                self.cache.release(dropped)
            # Fetched and verified before anything is evicted for it, where the files land on
            # disk: a version that cannot be fetched (a file missing or corrupt) evicted a
            # good one on every request for it. Files that land in memory are the peak the
            # room is made for, so they come after.
            source = None if self.cache.lands_in_memory(manifest) else self.cache.source(manifest)
            need, padding = self._peak_need(manifest, source)
            with self._guard:  # before the session: its peak needs the room
                evicted = self._make_room(manifest, need, keep)
                self._loading[key] = resident_bytes(manifest, padding)
            self._evicted(evicted)
            try:
                source = source if source is not None else self.cache.source(manifest)
                model = LoadedModel(
                    manifest,
                    source,
                    max_batch_size=self.settings.max_batch or None,
                    threads=self.settings.ort_threads or None,
                    run_limit_s=self.settings.max_run_seconds,
                )
            except Exception:
                if source is not None and not isinstance(source, ModelInMemory):
                    self.cache.release(manifest)  # its cache entry may go to make room
                raise
            finally:
                with self._guard:
                    self._loading.pop(key, None)
        except Exception:  # the caller answers it (a 503, a canary not served): counted here
            self.on_load(*key, LOAD_FAILED, time.perf_counter() - start)
            raise
        with self._guard:
            self._models[key] = model
            self._padding[key] = padding
            # Loads that ran at once each made room before the others landed: past the bounds
            # now, the least recently used of the others go.
            evicted = self._make_room(manifest, 0.0, keep, loaded=key)
        self._evicted(evicted)
        self._published.loaded(key)
        self.unpublished.forget(key)  # published after all (an alias moved onto it, say)
        if self.churn.reloaded(key) and outcome == LOADED:
            outcome = RELOADED
        self.on_load(*key, outcome, time.perf_counter() - start)
        log.info("loaded %s:%s from %s", manifest.name, manifest.version, model.path)
        return model

    def _peak_need(self, manifest: ModelManifest, source: ModelSource | None) -> tuple[float, int]:
        """The memory `manifest`'s load from `source` (None: into memory) takes at its peak,
        beyond the runtime's (0: the function's memory is unknown, nothing to check it
        against), and what its packed copies add past its weights once loaded. The deploy
        check's estimate (infra/model_fit.py), from the same walk of the model file: here the
        cached copy's, not a read of the store (none into memory). Not under `_guard`."""
        if self.usable_bytes == math.inf:
            return 0.0, 0
        layout = local_layout(manifest, source) if isinstance(source, Path) else None
        need = load_need(manifest, layout is None, layout)[0]
        return need - RUNTIME_MB * MB, layout.padding if layout is not None else 0

    def _make_room(
        self,
        manifest: ModelManifest,
        need: float,
        keep: tuple[str, str] | None,
        loaded: tuple[str, str] | None = None,
    ) -> list[ModelManifest]:
        """Evict what `pool_room.make_room` chooses for `manifest`'s load (its peak: `need`),
        or, once it is `loaded`, what is past the bounds beside it; the versions evicted.
        Under `_guard`."""
        serving = {key for keys in self._serving.values() for key in keys}
        serving.update(key for key in (keep, loaded) if key is not None)
        resident = (
            (key, resident_bytes(model.manifest, self._padding.get(key, 0)))
            for key, model in self._models.items()
        )
        most = self.max_versions + (loaded is not None)  # after the load: `max_versions` may stay
        room = make_room(resident, serving, need, most, self.usable_bytes, self._loading.values())
        if loaded is not None:
            room = replace(room, short=False)  # said when its room was made
        evicted = []
        for gone, why in room.evict:
            evicted.append(self._models.pop(gone).manifest)
            self._padding.pop(gone, None)
            self.evictions += 1
            # Routine on a long-lived server (each new version promoted evicts a superseded one
            # past the cap): INFO. One loaded again soon after is churn: `EvictionChurn`'s
            # WARNING, at most once a minute.
            self.churn.evicted(gone, why)
            log.info(
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
        if room.short:  # what an alias serves stays: the load goes ahead
            log.warning(
                "loading %s:%s needs ~%.0f MB beside the ~%.0f MB an alias's versions hold, "
                "%.0f MB usable of the function's memory: it may run out (raise MemorySize)",
                manifest.name,
                manifest.version,
                need / MB,
                room.kept_bytes / MB,
                self.usable_bytes / MB,
            )
        return evicted

    def _evicted(self, gone: list[ModelManifest]) -> None:
        for manifest in gone:  # none on nearly every load: nothing to report
            # Its cache entry may go to make room; at once if it was pruned meanwhile (a stat
            # or a HEAD, at most once an alias TTL: `StillPublished`), as `forget` drops it.
            pruned = not self._published((manifest.name, manifest.version))
            self.cache.release(manifest, pruned=pruned)
            self.on_evict(manifest.name, manifest.version)

    def load_version(self, name: str, version: str) -> LoadedModel:
        """`name:version`, loaded; a loaded one is served until pruned (`StillPublished`), one
        never published answers its 404 from memory for a TTL (`Unpublished`)."""
        with self._guard:
            loaded = self._models.get((name, version))
            if loaded is not None:
                self._models.move_to_end((name, version))
        if loaded is not None and self._published((name, version)):
            return loaded
        # After the loaded ones: an alias moved onto the version loads it, and a 404 remembered
        # while that load ran (checked first) answered for the loaded version until the TTL.
        self.unpublished.check((name, version))
        self.forget((name, version))  # pruned (or never loaded): resolved again, a 404 if gone
        if (pruned := self.registry.pruned_for_good(name, version)) is not None:
            raise pruned  # no store call, not even a stamp
        stamp = self.unpublished.stamp((name, version))  # before the read (`Unpublished.stamp`)
        try:
            manifest = self.registry.manifest(name, version)
        except VersionPruned:
            raise  # remembered by the registry once its prune is settled
        except ModelNotFound as exc:  # never published (its manifest missing): for a TTL
            self.unpublished.remember((name, version), exc.message, stamp)
            raise
        return self.load(manifest)

    def loaded_model(self, key: tuple[str, str]) -> LoadedModel | None:
        """The version `key` if loaded here (a dict read: no store call, no LRU move)."""
        return self._models.get(key)

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
            gone = self._models.pop(key, None)
            self._padding.pop(key, None)
            lock = self._locks.get(key)
            if lock is not None and not lock.locked():
                del self._locks[key]
        if gone is not None:  # pruned: its cache entry goes unless another process holds it
            self.cache.release(gone.manifest, pruned=True)

    def load_routed(self, ref: ModelRef, defer: bool = False) -> Routed:
        """What `ref` serves, both versions loaded when its alias splits traffic; `defer`: a
        canary not loaded yet is named (`Routed.warming`), not loaded, for the caller to load
        off the request path (functions/runtime/warming.py)."""
        found = self.registry.resolve_split(ref)
        try:
            main = self.load(found.manifest)
        except ModelUnavailable as exc:  # a split's canary still answers its own callers
            return canary_alone(self, ref, found, exc)
        canary, problem, warming = None, found.problem, None
        # Each said once until it works again: read again every TTL, a canary or shadow gone
        # from the store logged a line a refresh a worker (319 in 7 minutes, 2 workers).
        said, failures = self.routing_said.of(str(ref)), []
        if problem is not None:
            failures.append(f"{ref}: canary not served: {problem}")
        if found.shadow_problem is not None:
            failures.append(f"{ref}: shadow not served: {found.shadow_problem}")
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
                failures.append(f"{ref}: canary {found.canary.version} not loaded: {problem}")
        for failure in failures:
            said.failed(failure)
        if not failures and warming is None:
            said.worked(served_now(ref, found))
        shadow = found.shadow  # named, not loaded: replayed elsewhere (see the module's notes)
        cut = round(found.weight * ROUTE_SPACE)
        sample = found.sample if shadow else 0.0
        routed = Routed(main, canary, cut, ref.name, shadow, sample, problem, warming)
        self.serve(ref, routed)
        return routed

    def load_recorded(self, ref: ModelRef, manifest: ModelManifest) -> Routed:
        """What `ref` serves while the store is away: `manifest`, its local record's version
        (functions/runtime/served_record.py), from the cache, verified as every load is; no
        canary or shadow (their share goes to it until the store answers)."""
        routed = Routed(self.load(manifest, outcome=LOCAL_RECORD), salt=ref.name)
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


def served_now(ref: ModelRef, found: Resolution) -> str:
    """What `ref` serves once nothing it names fails any more. "its canary and shadow are served
    again" was logged after a rollout rolled an unloadable canary back: the alias named none."""
    named = [
        f"{what} {m.version}"
        for what, m in (("canary", found.canary), ("shadow", found.shadow))
        if m
    ]
    if not named:
        version = found.manifest.version
        return f"{ref}: names no canary or shadow any more; version {version} serves every request"
    return f"{ref}: its {' and '.join(named)} {'are' if len(named) > 1 else 'is'} served now"
