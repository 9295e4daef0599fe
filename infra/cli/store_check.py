"""`aiaas models --check`: is every version whole, and every alias's pinned manifest the one
stored? What to run after a store was copied (docs/registry.md, "Moving a store"), restored
from a backup, or had objects put back from a versioned bucket.

`aiaas models` alone lists versions by their manifests and reads each alias record: a copy
that had stopped halfway (a version's manifest there, its model.onnx missing or cut short) was
listed as whole, exit 0, and serving then answered that version 503 (the alias's callers all
of them where it was the alias's main version). The check reads each version's manifest (a
GET) and the size of each file it lists (a HEAD, 16 at a time), compares each alias's recorded
manifest digests with the manifests stored, and names version folders that hold files but no
manifest (a copy whose manifest has not arrived: a bare name serves an older version).

Sizes, not sha256: a file cut short or missing is what a copy leaves; a same-sized file with
other bytes is refused by every server as it loads it (its sha256 is checked then), and by
`aiaas promote`, which reads every byte of the version it moves onto.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from functions.runtime.aliases import AliasTarget
from functions.runtime.errors import AiaasError, NotFound
from functions.runtime.manifest import MANIFEST_FILE
from functions.runtime.manifest_pins import manifest_digest, pins_of
from functions.runtime.move_checked import files_of
from functions.runtime.refs import manifest_key, model_prefix, version_prefix
from functions.runtime.registry import Registry
from functions.runtime.version_folders import parsed

HEADS_AT_ONCE = 16  # as prune's size reads
AGAIN = (
    "copy it again from the source (a copy not finished?), or put the published object back "
    "(a versioned bucket keeps it); until then serving answers this version 503"
)


def model_problems(
    reg: Registry, name: str, versions: list[str], aliases: dict[str, AliasTarget]
) -> list[str]:
    """What is wrong with `name`'s versions' files and its aliases' manifest digests."""
    with ThreadPoolExecutor(HEADS_AT_ONCE) as pool:
        checked = list(pool.map(lambda v: _version(reg, name, v), versions))
    problems = [p for _, found in checked for p in found]
    digests = {v: digest for v, (digest, _) in zip(versions, checked, strict=True) if digest}
    problems += _pins(reg, name, aliases, digests)
    return problems + _unpublished_folders(reg, name, set(versions))


def _version(reg: Registry, name: str, version: str) -> tuple[str | None, list[str]]:
    """(the sha256 of the manifest as stored, or None where it does not read; problems)."""
    what = f"{name}:{version}"
    try:
        raw = reg.store.get_bytes(manifest_key(name, version))
        manifest = parsed(name, version, raw)
    except AiaasError as exc:
        return None, [f"{what}: {exc.message}"]
    prefix = version_prefix(name, version)

    def head(rel: str) -> int | None:
        try:
            return reg.store.head(f"{prefix}/{rel}").size
        except NotFound:
            return None

    listed = files_of(manifest)
    sizes = [head(rel) for rel, _, _ in listed]  # one after another: versions run at once
    problems = []
    for (rel, size, _), found in zip(listed, sizes, strict=True):
        if found is None:
            problems.append(f"{what}: {rel} is missing (its manifest lists {size} bytes): {AGAIN}")
        elif found != size:
            problems.append(
                f"{what}: {rel} is {found} bytes, its manifest lists {size} (cut short or "
                f"replaced): {AGAIN}"
            )
    return manifest_digest(raw), problems


def _pins(
    reg: Registry, name: str, aliases: dict[str, AliasTarget], digests: dict[str, str]
) -> list[str]:
    """An alias whose record pins a manifest digest another than the manifest stored: every
    server refuses that version for the alias (503) until the published one is put back."""
    problems = []
    for alias in sorted(aliases):
        try:
            record = reg.alias_record(name, alias)
        except AiaasError:
            continue  # already listed by `alias_targets`
        for version, pinned in sorted(pins_of(record).items()):
            stored = digests.get(version)
            if stored is not None and stored != pinned:
                problems.append(
                    f"alias {alias!r}: {name}:{version}'s {MANIFEST_FILE} is not the one it was "
                    f"moved onto (sha256 {stored}, recorded {pinned}): put the published "
                    f"{MANIFEST_FILE} back (a versioned bucket keeps it), or copy it again from "
                    "the source; until then serving answers this alias's share of it 503"
                )
    return problems


def _unpublished_folders(reg: Registry, name: str, versions: set[str]) -> list[str]:
    """Version folders holding files but no manifest: not versions (yet)."""
    prefix = f"{model_prefix(name)}/versions/"
    folders = set()
    for key in reg.store.list_keys(prefix.rstrip("/")):
        rest = key[len(prefix) :]
        if "/" in rest:
            folders.add(rest.split("/", 1)[0])
    return [
        f"{name}: versions/{folder}/ holds files but no {MANIFEST_FILE}, so it is no version "
        "(a copy not finished, a publish under way or killed, a prune stopped midway: `aiaas "
        "prune` removes the last two's); a bare name serves the newest version that has one"
        for folder in sorted(folders - versions)
    ]
