"""The digest of the code `aiaas --version` names beside the package's version.

Every release's package is version 0.1.0 (pyproject.toml), so the version cannot tell two
releases apart, and pip keeps an installed one: `pip install aiaas-0.1.0-py3-none-any.whl` over
an older install of the same number says "already installed with the same version as the
provided wheel" and exits 0, leaving the older code to serve the store. The digest covers every
.py file of the three packages as this process finds them, so it changes with any change to the
code: compare it before and after an upgrade (docs/install.md, "Upgrading").
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGES = ("functions", "infra", "training")


def code_digest(root: Path | None = None) -> str:
    """12 hex digits over each package's .py files (relative path and content), in order."""
    root = Path(__file__).resolve().parents[2] if root is None else root
    digest = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:12]
