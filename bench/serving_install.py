"""Footprint of the serving install: `pip install aiaas` with no extras, in a fresh venv.

    python -m bench.serving_install [--runs 3] [--venv DIR]

Creates a venv with `python3.11 -m venv` (or reuses `--venv`), installs a copy of this source
tree into it, then measures: MB on disk (the whole venv, and what aiaas brought beyond pip and
setuptools), the wall time of `aiaas --help` and `aiaas models`, the time from starting
`aiaas serve` to the first answered prediction of the reference MLP (64->256->256->10), a bare
`import numpy, onnxruntime` (the floor, measured in the same run), and the import of
Powertools' Logger and Metrics that the predict function adds. Each command runs from the
venv's own `aiaas` script, outside the checkout, with no PYTHONPATH: as a user runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.args import count, whole
from bench.args import venv as a_venv
from bench.models import publish_mlp

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "functions", "infra", "training")
TOOLING = ("pip", "setuptools", "pkg_resources", "_distutils_hack", "distutils-precedence.pth")
MB = 1024 * 1024


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def make_venv(root: Path) -> Path:
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(REPO / name, source / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, source / name)
    venv = root / "venv"
    python = shutil.which("python3.11") or sys.executable
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(source)]
    subprocess.run(pip, check=True)
    return venv


def user_env(venv: Path, store: Path, cache: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "AIAAS_"))
    }
    return env | {
        "PATH": f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
        "AIAAS_STORE": str(store),
        "AIAAS_CACHE_DIR": str(cache),
    }


def footprint(venv: Path) -> dict[str, float]:
    site = next((venv / "lib").glob("python3*/site-packages"))
    tooling = sum(
        disk_bytes(site / n) if (site / n).is_dir() else (site / n).stat().st_size
        for n in TOOLING
        if (site / n).exists()
    )
    tooling += sum(disk_bytes(p) for p in site.glob("*.dist-info") if p.name.startswith(TOOLING))
    total = disk_bytes(venv)
    return {"venv_mb": total / MB, "without_pip_setuptools_mb": (total - tooling) / MB}


def time_command(venv: Path, env: dict[str, str], cwd: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([str(venv / "bin" / "aiaas"), *args], env=env, cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start


def time_serve(venv: Path, env: dict[str, str], cwd: Path, port: int) -> float:
    """Seconds from starting `aiaas serve` to the first 200 of a prediction."""
    body = json.dumps({"inputs": [[0.5] * 64]}).encode()
    url = f"http://127.0.0.1:{port}/models/bench-mlp/predict"
    start = time.perf_counter()
    process = subprocess.Popen(
        [str(venv / "bin" / "aiaas"), "serve", "--port", str(port)],
        env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while time.perf_counter() - start < 60:
            try:
                request = urllib.request.Request(url, body, {"content-type": "application/json"})
                with urllib.request.urlopen(request, timeout=5) as answer:
                    if answer.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.005)
        raise RuntimeError("aiaas serve did not answer within 60 s")
    finally:
        process.terminate()
        process.wait(timeout=10)


POWERTOOLS = (
    "import time, numpy; t = time.perf_counter();"
    "from aws_lambda_powertools import Logger, Metrics;"
    "Logger(service='aiaas'); Metrics(namespace='aiaas');"
    "print(time.perf_counter() - t)"
)


def time_floor(venv: Path, env: dict[str, str], cwd: Path) -> float:
    """A bare interpreter importing numpy and onnxruntime: the floor under any serving start."""
    start = time.perf_counter()
    subprocess.run([str(venv / "bin" / "python"), "-c", "import numpy, onnxruntime"], env=env,
                   cwd=cwd, check=True)  # fmt: skip
    return time.perf_counter() - start


def time_powertools(venv: Path, env: dict[str, str], cwd: Path) -> float:
    out = subprocess.run([str(venv / "bin" / "python"), "-c", POWERTOOLS], env=env, cwd=cwd,
                         check=True, capture_output=True, text=True)  # fmt: skip
    return float(out.stdout)


def spread(values: list[float], scale: float = 1e3) -> str:
    return f"{min(values) * scale:.0f}-{max(values) * scale:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=count, default=3)
    parser.add_argument("--venv", type=a_venv, help="measure this venv instead of a fresh one")
    parser.add_argument("--port", type=whole(1, 65535), default=18431)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aiaas-install-") as tmp:
        root = Path(tmp)
        venv = args.venv or make_venv(root)
        publish_mlp(root / "store")
        env = user_env(venv, root / "store", root / "cache")
        sizes = footprint(venv)
        time_command(venv, env, root, "--help")  # warms the page cache; pip byte-compiled
        helps = [time_command(venv, env, root, "--help") for _ in range(args.runs)]
        lists = [time_command(venv, env, root, "models") for _ in range(args.runs)]
        serves = [time_serve(venv, env, root, args.port) for _ in range(args.runs)]
        floors = [time_floor(venv, env, root) for _ in range(args.runs)]
        powertools = [time_powertools(venv, env, root) for _ in range(args.runs)]
    print(f"venv on disk: {sizes['venv_mb']:.0f} MB "
          f"({sizes['without_pip_setuptools_mb']:.0f} MB without pip and setuptools)")  # fmt: skip
    print(f"aiaas --help: {spread(helps)} ms ({args.runs} runs)")
    print(f"aiaas models: {spread(lists)} ms")
    print(f"aiaas serve, start to first prediction: {spread(serves)} ms ({args.runs} runs)")
    print(f"floor, python -c 'import numpy, onnxruntime': {spread(floors)} ms")
    print(f"Powertools Logger+Metrics import after numpy: {spread(powertools)} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
