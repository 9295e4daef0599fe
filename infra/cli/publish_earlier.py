"""The versions of a model published before the one `aiaas publish` writes, as it reads them
for its notes and checks: the listing, @production and each manifest once. What the bare name
serves (the renamed-output and token-ids notes), the newest version's labels (the unlabelled
note) and the newest 20's files (the same-file check) were read apart: the newest manifest two
or three times."""

from __future__ import annotations

from functions.runtime.manifest import ModelManifest
from functions.runtime.refs import DEFAULT_ALIAS
from functions.runtime.registry import Registry


class Earlier:
    """`name`'s published versions, read on first use and kept for the rest of one publish. A
    read that fails is not kept: asked again, it fails again (or answers), as it did."""

    def __init__(self, reg: Registry, name: str) -> None:
        self.reg, self.name = reg, name
        self._versions: list[str] | None = None
        self._manifests: dict[str, ModelManifest] = {}
        self._alias: tuple[str | None] | None = None  # @production's version, once read

    def versions(self) -> list[str]:
        """Its published versions, oldest first (none for a new model)."""
        if self._versions is None:
            self._versions = self.reg.versions(self.name, missing_ok=True)
        return self._versions

    def manifest(self, version: str) -> ModelManifest:
        if version not in self._manifests:
            self._manifests[version] = self.reg.manifest(self.name, version)
        return self._manifests[version]

    def newest(self) -> ModelManifest | None:
        versions = self.versions()
        return self.manifest(versions[-1]) if versions else None

    def served(self) -> ModelManifest | None:
        """What the bare name serves: the version @production points at, else the newest."""
        if self._alias is None:
            self._alias = (self.reg.alias(self.name, DEFAULT_ALIAS),)
        version = self._alias[0]
        return self.newest() if version is None else self.manifest(version)
