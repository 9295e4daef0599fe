"""The directory store as a user's files: modes that follow the umask."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_local_files_respect_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    """Published models and batch outputs are ordinary files: `cp` would leave them so."""
    script = (
        "import os, sys; os.umask(int(sys.argv[2], 8))\n"
        "from functions.runtime.store import LocalStore\n"
        "store = LocalStore(sys.argv[1])\n"
        "store.put_bytes('models/m/versions/1/model.onnx', b'x')\n"
        "with store.open_write('batch/m/output/a.csv') as out:\n"
        "    out.write(b'y')\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), oct(umask)[2:]], check=True, cwd=REPO
    )
    for key in ("models/m/versions/1/model.onnx", "batch/m/output/a.csv"):
        assert stat.S_IMODE((tmp_path / key).stat().st_mode) == mode, key
