"""What serves a model reference: its version(s) split by routing key, and the watch over the
registry keys its resolution read (built by functions/runtime/pool.py and served.py)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from functions.runtime.errors import AiaasError, ModelUnavailable
from functions.runtime.manifest import ModelManifest
from functions.runtime.model import LoadedModel
from functions.runtime.refs import watched_keys_lazily
from functions.runtime.registry import ModelRef, Registry
from functions.runtime.store import ObjectStore, Stamp

ROUTE_SPACE = 2**64  # routing keys hash to 0 .. ROUTE_SPACE - 1; the canary takes the low end


class MainNotServed(ModelUnavailable):
    """A request a split routes to its main version, which failed to load (a model file failing
    its integrity check): its 503, naming the version and why, while the canary answers its own
    share (`Routed.broken`). `version`: the version the caller's routing key is sent to."""

    def __init__(self, version: str, failure: AiaasError) -> None:
        public = f"version {version}, which this request is routed to, is not served: "
        super().__init__(failure.message, public_message=public + failure.public_message)
        self.version = version


@dataclass(frozen=True)
class Routed:
    """The model(s) serving a reference: `main`, or a `canary` for the keys hashing below `cut`."""

    main: LoadedModel
    canary: LoadedModel | None = None
    cut: int = 0
    salt: str = ""  # the model name: one caller is not the canary of every model at once
    shadow: ModelManifest | None = None  # replayed `sample` of the requests, answering none
    sample: float = 0.0
    problem: str | None = None  # why a version the alias names is not served (logged, surfaced)
    # A canary the alias newly names, loading off the request path (functions/runtime/warming.py):
    # until it is in, its share goes to `main`, as a canary that failed to load would.
    warming: ModelManifest | None = None
    # The split's main version failed to load (version, why): `main` is then its canary, which
    # answers its own share; the main's share is answered 503 (`MainNotServed`), not moved.
    broken: tuple[str, AiaasError] | None = None

    def pick(self, routing_key: Callable[[], str | None]) -> LoadedModel:
        """The model for one request; `routing_key` is called only when there is a choice."""
        canary = self.canary
        if canary is None and self.broken is None:
            return self.main
        key = routing_key()
        if key is None:
            point = random.getrandbits(64)
        else:
            digest = hashlib.blake2b(f"{self.salt}\n{key}".encode(), digest_size=8).digest()
            point = int.from_bytes(digest, "big")
        if canary is None:  # `broken`: the canary (`main` here) answers below the cut only
            if point < self.cut:
                return self.main
            raise self.main_not_served()
        return canary if point < self.cut else self.main

    def main_not_served(self) -> MainNotServed:
        """The 503 of a request routed to a `broken` main version (a new one each: one raised
        again and again would grow its traceback)."""
        assert self.broken is not None
        return MainNotServed(*self.broken)

    def versions(self) -> tuple[LoadedModel, ...]:
        return (self.main,) if self.canary is None else (self.main, self.canary)

    def __str__(self) -> str:
        text = self.main.ref
        if self.broken is not None:
            share = 1 - self.cut / ROUTE_SPACE
            text = f"{self.main.ref} ({self.cut / ROUTE_SPACE:.4g}; its main version"
            text += f" {self.broken[0]}'s {share:.4g} answered 503: not loaded)"
        elif self.canary is not None:
            text += f" + {self.canary.ref} ({self.cut / ROUTE_SPACE:.4g})"
        elif self.warming is not None:
            m = self.warming
            text += f" (+ {m.name}:{m.version} at {self.cut / ROUTE_SPACE:.4g} once loaded)"
        if self.shadow is not None:
            text += f", shadow {self.shadow.name}:{self.shadow.version} ({self.sample:.4g})"
        return text


@dataclass(frozen=True)
class RegistryWatch:
    """What the keys a resolution depends on looked like just before it read them."""

    store: ObjectStore
    stamps: tuple[tuple[str, Stamp | None], ...]

    @classmethod
    def of(cls, registry: Registry, ref: ModelRef) -> RegistryWatch | None:
        """A watch over `ref`'s keys; None when pinned, or when the store cannot stamp keys."""
        stamps = []
        for key in watched_keys_lazily(registry.store, ref):  # the alias record first
            if (stamp := registry.store.stamp(key)) is None:
                return None  # unstampable: the rest (a HEAD a version) would be for nothing
            stamps.append((key, stamp))
        return cls(registry.store, tuple(stamps)) if stamps else None

    def changed(self) -> bool:
        stamp = self.store.stamp
        # A loop, not any(<generator>): ~0.2 us less, on every request.
        for key, seen in self.stamps:  # noqa: SIM110
            if stamp(key) != seen:
                return True
        return False
