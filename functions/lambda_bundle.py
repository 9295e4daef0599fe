"""Builds the Lambda bundle every function ships (not part of it: it removes itself).

    python3.12 lambda_bundle.py ARTIFACTS_DIR [--machine aarch64] [--cache DIR]

`sam build` runs it through functions/Makefile (`make build-<LogicalId>`, template.yaml's
`BuildMethod: makefile`); `python -m bench.bundle_size` runs it to measure the bundle.

SAM's own Python builder ships no bytecode, and Lambda's /var/task is read-only, so a cold
start without SnapStart compiled numpy, onnxruntime's Python and ours every time (~180 ms of a
~370 ms init, measured in docs/deploy.md). This builds what that builder did, compiled:
1. the lock (requirements.txt) installed for Lambda's platform, wheels only, exactly as
   written (`--no-deps`): it leaves out what serving never imports, which pip would otherwise
   add back from the packages' declared dependencies (requirements.txt says which and why);
2. this package as `functions/`, without its build files and caches;
3. all of it compiled by python3.12, the runtime's version, as checked-hash .pyc (a source
   edited in place is never shadowed by an old .pyc) naming /var/task paths, so every
   function's bundle is the same bytes and `sam package` uploads one zip.
Tests are not compiled (nothing imports them). SAM builds each function of a makefile build on
its own (the target names the function), so the compiled dependencies are kept once per lock
and machine in `--cache` and linked into each function's folder.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import hashlib
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCK = HERE / "requirements.txt"
BUILD_FILES = ("Makefile", "requirements.in", "requirements.txt", Path(__file__).name)
RUNTIME = "3.12"  # template.yaml's Runtime: its bytecode is the only one Lambda loads
LAMBDA_ROOT = "/var/task"  # where Lambda unpacks the bundle
NOT_COMPILED = re.compile(r"[/\\]tests?[/\\]")
# What the lock's packages ship and serving never runs: onnxruntime's offline tools (the
# quantizer, the transformers optimizer, ORT-format conversion), which import onnx, protobuf or
# flatbuffers, none of them in the bundle; and the packages' own test suites (numpy's, under
# `tests/` folders). 17 MB unzipped that each cold start's code fetch moved for nothing.
NOT_SHIPPED = ("onnxruntime/transformers", "onnxruntime/quantization", "onnxruntime/tools")


def wheel_platforms(machine: str) -> list[str]:
    """The manylinux tags Lambda's Amazon Linux 2023 (glibc 2.34) runs."""
    return [f"manylinux_2_{v}_{machine}" for v in (34, 28, 17)] + [f"manylinux2014_{machine}"]


def compile_tree(folder: Path, root: Path) -> None:
    """Compile `folder` (inside `root`, the bundle's top) as Lambda will find it."""
    ok = compileall.compile_dir(
        folder,
        quiet=2,
        workers=0,
        rx=NOT_COMPILED,
        stripdir=str(root),
        prependdir=LAMBDA_ROOT,
        invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
    )
    if not ok:
        raise SystemExit(f"compiling {folder} failed")


def prune(site: Path) -> None:
    """Remove from the installed lock what serving never imports (NOT_SHIPPED, test suites)."""
    for folder in NOT_SHIPPED:
        shutil.rmtree(site / folder, ignore_errors=True)
    for suite in sorted(site.glob("*/**/tests"), reverse=True):  # inner suites first
        if suite.is_dir():
            shutil.rmtree(suite, ignore_errors=True)


def dependencies(cache: Path, machine: str) -> Path:
    """The lock installed and compiled for `machine`: built once per lock, machine and builder."""
    key = hashlib.sha256(LOCK.read_bytes() + machine.encode() + Path(__file__).read_bytes())
    done = cache / key.hexdigest()[:16]
    if done.is_dir():
        return done
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache))
    try:
        platforms = [arg for tag in wheel_platforms(machine) for arg in ("--platform", tag)]
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-compile", "--no-deps", "--only-binary=:all:", *platforms, "--implementation", "cp",
             "--python-version", RUNTIME, "--target", str(staging), "-r", str(LOCK)],
            check=True,
        )  # fmt: skip
        prune(staging)
        compile_tree(staging, staging)
        # A parallel build (`sam build --parallel`) may have finished the same one first.
        with contextlib.suppress(OSError):
            staging.rename(done)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for old in cache.iterdir():  # earlier locks' builds: ~190 MB each
        if old != done and not old.name.startswith(".staging-"):
            shutil.rmtree(old, ignore_errors=True)
    return done


def link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem
        shutil.copy2(src, dst)


def build(artifacts: Path, machine: str, cache: Path) -> None:
    running = "{}.{}".format(*sys.version_info[:2])
    if running != RUNTIME:
        raise SystemExit(
            f"the bundle must be compiled by python{RUNTIME} (Lambda's runtime); this is "
            f"python{running}"
        )
    artifacts.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        dependencies(cache, machine), artifacts, copy_function=link_or_copy, dirs_exist_ok=True
    )
    package = artifacts / "functions"
    shutil.rmtree(package, ignore_errors=True)
    shutil.copytree(HERE, package, ignore=shutil.ignore_patterns("__pycache__", *BUILD_FILES))
    compile_tree(package, artifacts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifacts", type=Path, help="the function's folder to fill")
    parser.add_argument("--machine", default="aarch64", help="aarch64 (arm64) or x86_64")
    parser.add_argument("--cache", type=Path, help="where compiled dependencies are kept")
    args = parser.parse_args()
    artifacts = args.artifacts.resolve()
    build(artifacts, args.machine, args.cache or artifacts.parent / ".aiaas-dependencies")


if __name__ == "__main__":
    main()
