"""The versions `aiaas monitor NAME@ALIAS` judges: each one the alias answers callers with.

An alias split by `aiaas promote --weight` answers a share of requests with a canary; before,
monitor (its table, `--json` and `--fail-on-drift`) judged only the main version and said
nothing of the canary, so a cron gate passed whatever the canary's half of the traffic did. Now
each version is judged on its own rows against its own baseline. A shadow answers no caller
and its replayed rows are not counted (functions/shadow/replay.py): it is named as not judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from functions.runtime.manifest import ModelManifest
from functions.runtime.refs import Resolution


@dataclass(frozen=True)
class Route:
    """A version judged, and its share of the alias's requests (None: the only version)."""

    manifest: ModelManifest
    share: float | None = None
    role: str = ""  # "main version" or "canary" where the alias splits

    @property
    def ref(self) -> str:
        return f"{self.manifest.name}:{self.manifest.version}"

    @property
    def heading(self) -> str:
        """'iris:1', or 'iris:2 (canary, 10% of requests)' where the alias splits."""
        if self.share is None:
            return self.ref
        # as `aiaas promote` says the split: a 0.4% canary is not "0% of requests"
        return f"{self.ref} ({self.role}, {self.share * 100:.4g}% of requests)"

    def png(self, asked: Path | None) -> Path:
        """The PNG of this version: NAME-VERSION-drift.png, or `asked`; a canary's beside it,
        its version added to the name (one file per version, not one drawn over the other)."""
        if asked is None:
            return Path(f"{self.manifest.name}-{self.manifest.version}-drift.png")
        if self.role != "canary":
            return asked
        return asked.with_name(f"{asked.stem}-{self.manifest.version}{asked.suffix}")


def routes(found: Resolution) -> tuple[list[Route], list[str]]:
    """The versions to judge (the main version first), and a line for each one the alias names
    that is not judged here: a canary gone from the store, a shadow."""
    main = found.manifest
    notes = []
    if found.canary is None:
        judged = [Route(main)]
    else:
        judged = [
            Route(main, 1 - found.weight, "main version"),
            Route(found.canary, found.weight, "canary"),
        ]
    if found.problem is not None:
        notes.append(f"the alias's canary is not judged: {found.problem}")
    if found.shadow is not None:
        ref = f"{found.shadow.name}:{found.shadow.version}"
        notes.append(
            f"{ref} (the alias's shadow, answering no caller) is not judged: the rows replayed "
            "to a shadow are not counted for drift"
        )
    return judged, notes
