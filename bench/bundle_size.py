"""Build and measure the Lambda serving bundle, and what its bytecode saves a cold start.

    .venv/bin/python -m bench.bundle_size [--out build/lambda] [--json]
    .venv/bin/python -m bench.bundle_size --cold-start 9

The bundle is built by functions/lambda_bundle.py, what `sam build` runs for every function
(arm64, python3.12): the lock, the functions/ package, all compiled. Lambda's limits: 250 MB
unzipped; 50 MB zipped only for a direct upload, which `sam package` (through S3) is not.
Prints zipped and unzipped sizes and the largest packages; fails only past the unzipped limit.

`--cold-start N`: builds the same bundle for this machine (x86_64) and times N fresh
python3.12 processes each, alternating, with the bundle alone on sys.path (`-S`, no
site-packages, bytecode never written: Lambda's /var/task is read-only): the predict
handler's init (import, load a model from a local store, answer one event) and the floor
(numpy + onnxruntime + session + run), each from the bundle as built and from the same bundle
without its .pyc (what SAM's Python builder ships).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from bench.args import count

ROOT = Path(__file__).resolve().parents[1]
BUILDER = ROOT / "functions" / "lambda_bundle.py"
MB = 1024 * 1024
DIRECT_ZIPPED_MB = 50
LIMIT_UNZIPPED_MB = 250


def python312() -> str:
    """python3.12, Lambda's runtime: pyenv's, else PATH's (as `sam build` needs it)."""
    from tests.infra.sam_cli import python312_dir

    return str(python312_dir() / "python3.12")


def build(target: Path, machine: str = "aarch64") -> None:
    """The bundle `sam build` makes, into `target` (compiled dependencies kept beside it)."""
    cache = target.parent / "dependencies"
    command = [python312(), str(BUILDER), str(target), "--machine", machine, "--cache", str(cache)]
    subprocess.run(command, check=True)


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


def size_report(out: Path) -> dict[str, object]:
    target, archive = out / "bundle", out / "bundle.zip"
    shutil.rmtree(target, ignore_errors=True)
    build(target)
    zip_dir(target, archive)
    pyc = sum(p.stat().st_size for p in target.rglob("*.pyc"))
    return {
        "zipped_mb": round(archive.stat().st_size / MB, 1),
        "unzipped_mb": round(tree_bytes(target) / MB, 1),
        "bytecode_mb": round(pyc / MB, 1),
        "direct_upload_zipped_mb": DIRECT_ZIPPED_MB,
        "limit_unzipped_mb": LIMIT_UNZIPPED_MB,
        "largest_mb": {name: round(size, 1) for name, size in largest(target)},
    }


HANDLER = """
import json
from functions.predict.handler import handler
assert handler(json.loads({event!r}))["statusCode"] == 200
"""
FLOOR = """
import numpy as np, onnxruntime as ort
s = ort.InferenceSession({model!r}, providers=["CPUExecutionProvider"])
s.run(None, {{"x": np.zeros((1, 64), np.float32)}})
"""


def fresh(bundle: Path, code: str, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU ms of one fresh python3.12 running `code` with only `bundle` on its path."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    script = f"import sys; sys.path.insert(0, {str(bundle)!r})\n{code}"
    subprocess.run([python312(), "-S", "-c", script], env=env, check=True, cwd=bundle)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall * 1e3, cpu * 1e3


def cold_start(out: Path, rounds: int) -> dict[str, dict[str, float]]:
    from bench.models import publish_mlp
    from bench.predict_latency import MODEL, events

    compiled, plain = out / "x86_64" / "bundle", out / "x86_64" / "bundle-no-pyc"
    shutil.rmtree(compiled.parent, ignore_errors=True)
    build(compiled, "x86_64")
    shutil.copytree(compiled, plain, ignore=shutil.ignore_patterns("__pycache__"))
    work = Path(tempfile.mkdtemp(prefix="aiaas-bundle-"))
    model = publish_mlp(work / "store", MODEL)
    import numpy as np

    event = json.dumps(events(np.zeros((1, 64), np.float32))["simple JSON"])
    env = {
        "PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1",
        "AIAAS_STORE": str(work / "store"), "AIAAS_CACHE_DIR": str(work / "cache"),
        "AIAAS_MODEL": MODEL, "AIAAS_MODEL_SELECTOR": "@production",
        "AWS_LAMBDA_LOG_LEVEL": "WARN", "AIAAS_DISABLE_METRICS": "1",
    }  # fmt: skip
    cases = {
        f"{what}, {form}": (bundle, code)
        for form, bundle in (("with .pyc", compiled), ("without .pyc", plain))
        for what, code in (
            ("handler", HANDLER.format(event=event)),
            ("floor", FLOOR.format(model=str(model))),
        )
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (bundle, code) in cases.items():  # interleaved: drift hits all alike
            times[name].append(fresh(bundle, code, env))
    shutil.rmtree(work, ignore_errors=True)
    return {
        name: {
            "wall_ms": round(statistics.median(t[0] for t in runs), 1),
            "cpu_ms": round(statistics.median(t[1] for t in runs), 1),
        }
        for name, runs in times.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lambda")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--cold-start", type=count, metavar="N", help="time N cold starts each")
    args = parser.parse_args(argv)
    if args.cold_start:
        figures = cold_start(args.out, args.cold_start)
        if args.json:
            print(json.dumps(figures, indent=2))
            return 0
        print(f"cold start, fresh python3.12 from the bundle (x86_64), median of {args.cold_start}")
        for name, values in figures.items():
            print(f"  {name:26} wall {values['wall_ms']:7.1f} ms   cpu {values['cpu_ms']:7.1f} ms")
        for what in ("handler", "floor"):
            with_pyc = figures[f"{what}, with .pyc"]["wall_ms"]
            without = figures[f"{what}, without .pyc"]["wall_ms"]
            print(
                f"  {what}: .pyc saves {without - with_pyc:.1f} ms,"
                f" with / without .pyc {with_pyc / without:.2f}x"
            )
        return 0
    report = size_report(args.out)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"bundle: {args.out / 'bundle.zip'}")
        print(f"zipped   {report['zipped_mb']:6.1f} MB  (direct upload {DIRECT_ZIPPED_MB} MB)")
        print(f"unzipped {report['unzipped_mb']:6.1f} MB  (Lambda limit {LIMIT_UNZIPPED_MB} MB)")
        print(f"  of it bytecode {report['bytecode_mb']:6.1f} MB")
        for name, size in report["largest_mb"].items():  # type: ignore[attr-defined]
            print(f"  {name:28} {size:6.1f} MB")
    return 0 if float(report["unzipped_mb"]) < LIMIT_UNZIPPED_MB else 1  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
