"""Build and measure the Lambda serving bundle: arm64, python3.12, zip package.

    .venv/bin/python -m bench.bundle_size [--out build/lambda] [--json]

What `sam build` puts in every function's zip (template.yaml: CodeUri functions/ with
ParentPackageMode): functions/requirements.txt installed for manylinux aarch64 / CPython 3.12,
plus the functions/ package. Lambda's limits: 250 MB unzipped; 50 MB zipped only for a direct
upload, which `sam package` (through S3) is not. Prints zipped and unzipped sizes and the largest
packages; fails only past the unzipped limit.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "functions" / "requirements.txt"
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64")
MB = 1024 * 1024
DIRECT_ZIPPED_MB = 50
LIMIT_UNZIPPED_MB = 250
SKIP = ("__pycache__", ".pyc")


def install(target: Path) -> None:
    """pip install the serving requirements for Lambda's arm64 python3.12 into `target`."""
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target),
         *platforms, "--python-version", "3.12", "--implementation", "cp",
         "--only-binary=:all:", "--no-compile", "-r", str(REQUIREMENTS)],
        check=True,
    )  # fmt: skip


def add_package(target: Path) -> None:
    shutil.copytree(ROOT / "functions", target / "functions", ignore=shutil.ignore_patterns(*SKIP))


def zip_dir(source: Path, dest: Path) -> None:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(source).as_posix())


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def largest(target: Path, count: int = 8) -> list[tuple[str, float]]:
    sizes = [(p.name, tree_bytes(p) / MB) for p in target.iterdir() if p.is_dir()]
    return sorted(sizes, key=lambda item: -item[1])[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lambda")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    target, archive = args.out / "bundle", args.out / "bundle.zip"
    shutil.rmtree(args.out, ignore_errors=True)
    target.mkdir(parents=True)
    install(target)
    add_package(target)
    zip_dir(target, archive)
    report = {
        "zipped_mb": round(archive.stat().st_size / MB, 1),
        "unzipped_mb": round(tree_bytes(target) / MB, 1),
        "direct_upload_zipped_mb": DIRECT_ZIPPED_MB,
        "limit_unzipped_mb": LIMIT_UNZIPPED_MB,
        "largest_mb": {name: round(size, 1) for name, size in largest(target)},
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"bundle: {archive}")
        print(f"zipped   {report['zipped_mb']:6.1f} MB  (direct upload {DIRECT_ZIPPED_MB} MB)")
        print(f"unzipped {report['unzipped_mb']:6.1f} MB  (Lambda limit {LIMIT_UNZIPPED_MB} MB)")
        for name, size in report["largest_mb"].items():
            print(f"  {name:28} {size:6.1f} MB")
    return 0 if report["unzipped_mb"] < LIMIT_UNZIPPED_MB else 1


if __name__ == "__main__":
    sys.exit(main())
