"""bench.scratch: a bench's working folder is gone when the script ends, kept when asked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = (
    "import sys\n"
    "from bench.scratch import scratch_dir\n"
    "work = scratch_dir('aiaas-scratch-test-')\n"
    "(work / 'store').mkdir()\n"
    "(work / 'store' / 'model.onnx').write_bytes(b'x' * 10)\n"
    "print(work)\n"
    "sys.exit(int(sys.argv[1]))\n"  # a failed bench is cleaned up too
)


def run(tmp_path: Path, code: int, **env: str) -> tuple[Path, str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(code)],
        env={**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == code, done.stderr
    return Path(done.stdout.strip()), done.stderr


def test_the_folder_and_what_the_bench_wrote_are_removed_at_exit(tmp_path: Path) -> None:
    for code in (0, 1):
        work, _ = run(tmp_path, code)
        assert work.parent == tmp_path and work.name.startswith("aiaas-scratch-test-")
        assert not work.exists()
    assert list(tmp_path.iterdir()) == []


def test_aiaas_bench_keep_keeps_it_and_says_where(tmp_path: Path) -> None:
    work, err = run(tmp_path, 0, AIAAS_BENCH_KEEP="1")
    assert (work / "store" / "model.onnx").read_bytes() == b"x" * 10
    assert str(work) in err
