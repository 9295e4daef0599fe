"""Whether a version's model card is still the one published: `aiaas show` prints its path.

The manifest lists each card file with its sha256 (the card is written before it), and the
control plane refuses to answer a card that differs (503). `aiaas show` read only whether
card.md existed, so an auditor was pointed at a card edited in the store since (a test
precision raised) as if it were the version's own. The card is small (its Markdown and a few
PNGs): reading it whole costs a GET a file, where the model file itself may be gigabytes and
is checked by serving, `aiaas pull` and `aiaas compare` instead.
"""

from __future__ import annotations

import hashlib

from functions.runtime.errors import NotFound
from functions.runtime.manifest import ModelManifest
from functions.runtime.refs import manifest_key
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.transfer import CHANGED


def card_problems(manifest: ModelManifest, reg: Registry) -> list[str]:
    """A line for each card file the manifest lists that is missing or not as it lists it."""
    prefix = version_prefix(manifest.name, manifest.version)
    problems = []
    for listed in manifest.files:
        if not listed.path.startswith("card/"):
            continue
        try:
            data = reg.store.get_bytes(f"{prefix}/{listed.path}")
        except NotFound:
            problems.append(f"{listed.path} is missing from the store")
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest != listed.sha256:
            problems.append(
                f"{listed.path} has sha256 {digest} ({len(data)} bytes); its manifest lists "
                f"{listed.sha256} ({listed.size} bytes)"
            )
    return problems


def card_refusal(manifest: ModelManifest, problems: list[str]) -> str:
    """What `aiaas show` says on stderr (exit 1) of a card that is not the published one."""
    return (
        f"{manifest.name}:{manifest.version}'s model card is not the one published, so do not "
        f"rely on it: {'; '.join(problems)} ({CHANGED})"
    )


def manifest_digest(manifest: ModelManifest, reg: Registry) -> str | None:
    """sha256 of the manifest as stored. The manifest is what every other file of a version is
    checked against, and nothing checks it: an edit of its labels (two classes swapped) is
    served as written. An approver records this digest; `aiaas show` prints it to compare."""
    try:
        return hashlib.sha256(
            reg.store.get_bytes(manifest_key(manifest.name, manifest.version))
        ).hexdigest()
    except NotFound:  # deleted since it was read (a prune): nothing to show
        return None
