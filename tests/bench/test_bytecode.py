"""`bench.bytecode`: a timed cold start imports compiled modules, as a deployed function does."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from bench import bytecode

pytestmark = pytest.mark.xdist_group("bytecode")  # it rewrites the checkout's .pyc


def _pyc(source: Path) -> Path:
    return Path(importlib.util.cache_from_source(str(source)))


def test_a_stale_module_is_compiled_again_and_an_import_would_use_it() -> None:
    source = bytecode.ROOT / "functions" / "predict" / "handler.py"
    bytecode.compile_checkout()
    stat = source.stat()
    # The source edited after its .pyc: an import would compile it (its header no longer matches).
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    try:
        bytecode.compile_checkout()
        header = _pyc(source).read_bytes()[8:12]
        assert int.from_bytes(header, "little") == int(source.stat().st_mtime)
    finally:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        bytecode.compile_checkout()


def test_every_package_a_cold_start_imports_is_compiled() -> None:
    bytecode.compile_checkout()
    for package in ("functions", "infra"):
        for source in (bytecode.ROOT / package).rglob("*.py"):
            assert _pyc(source).is_file(), source
