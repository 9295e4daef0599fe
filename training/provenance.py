"""Who ran a training job and with which software: what an auditor needs to re-run it.

The manifest recorded the spec, the seed and the data, and of the software only torch's
version (in `file.producer`); who ran the job was nowhere. The same spec and seed reproduce a
model byte for byte only with the same torch, onnxruntime and numpy, so a version now records
them (`training.software`) and the job's runner (`training.run_by`: `AIAAS_ACTOR`, else the
login user, as the registry records alias moves).
"""

from __future__ import annotations

import getpass
import os
import platform
from importlib import metadata

# Distributions whose versions decide what a job trains and exports, in the order shown.
PACKAGES = ("aiaas", "torch", "onnx", "onnxruntime", "onnxscript", "numpy")
CODE = "aiaas_code"  # the digest of aiaas's own code, shown beside its version on the card


def software() -> dict[str, str]:
    """`{"aiaas": "0.1.0", "python": "3.11.7", "torch": "2.13.0+cpu", ...}`; a distribution
    not installed is left out (onnxscript: only the dynamo exporter needs it)."""
    found = {"aiaas": "", "python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found.pop(name, None)
    # Every release is 0.1.0: the digest of the code itself tells two apart (what `aiaas
    # --version` names beside the version; docs/install.md, "Upgrading").
    from infra.cli.code_digest import code_digest

    found[CODE] = code_digest()
    return found


def run_by() -> str:
    """Who the job ran as: `AIAAS_ACTOR`, else `$USER`, else the login name."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return os.environ.get("AIAAS_ACTOR") or os.environ.get("USER") or login


def provenance_line(training: dict[str, object]) -> list[str]:
    """The card's line: `- Run by alice with aiaas 0.1.0, python 3.11.7, torch 2.13.0, ...`."""
    found = training.get("software")
    if not isinstance(found, dict) or not found:
        return []
    order = ("aiaas", "python", *PACKAGES[1:])  # as shown, whatever order the JSON kept
    shown = [n for n in found if n != CODE]
    names = sorted(shown, key=lambda n: (order.index(n) if n in order else len(order), n))
    said = {n: str(found[n]) for n in names}
    if "aiaas" in said and found.get(CODE):  # `aiaas 0.1.0 (code e5900f7ec913)`
        said["aiaas"] += f" (code {found[CODE]})"
    versions = ", ".join(f"{name} {said[name]}" for name in names)
    return [f"- Run by {training.get('run_by') or 'unknown'} with {versions}"]
