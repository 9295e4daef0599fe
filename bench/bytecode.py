"""Compile this checkout's modules before a cold start is timed.

A deployed function imports compiled bytecode (`sam build` ships the .pyc, see
`bench.bundle_size`), and the peers and the floor import packages that pip compiled at install
time. An editable checkout's own modules are compiled only when Python may write bytecode: with
PYTHONDONTWRITEBYTECODE set (as on this machine) every edited module is compiled again at every
start, and the predict handler's cold start read 2.00x the floor where it reads 1.38-1.48x with
its modules compiled (2026-12-04). So every benchmark that times a fresh process calls this
first, as `make install` does.
"""

from __future__ import annotations

import compileall
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("functions", "infra", "training", "bench")


def compile_checkout() -> None:
    """Write the missing or stale .pyc of the checkout's packages (quick when none is)."""
    for package in PACKAGES:
        if not compileall.compile_dir(ROOT / package, quiet=1):
            raise SystemExit(f"cannot compile {ROOT / package}: a cold start would compile it")
