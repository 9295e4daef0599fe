"""The Makefile's deploy targets as docs/deploy.md uses them (dry runs: `make -n`, nothing built)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def dry_run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PACKAGE_BUCKET", "MAKEFLAGS")}
    return subprocess.run(
        ["make", "-n", "-C", str(REPO), *args], env=env, capture_output=True, text=True, timeout=30
    )


def test_make_package_without_a_bucket_stops_before_building() -> None:
    # It used to run the install and a whole `sam build` (a minute or more) and only then say
    # that PACKAGE_BUCKET was missing.
    result = dry_run("package")
    assert result.returncode != 0
    assert "make package needs PACKAGE_BUCKET=<bucket>" in result.stderr
    assert "sam" not in result.stdout and "pip" not in result.stdout


def test_make_package_with_a_bucket_builds_then_packages_to_it() -> None:
    result = dry_run("package", "PACKAGE_BUCKET=my-bucket")
    assert result.returncode == 0, result.stderr
    assert "build" in result.stdout
    assert '--s3-bucket "my-bucket"' in result.stdout
