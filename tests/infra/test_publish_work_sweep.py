"""`aiaas publish` and `aiaas pull` work in a private folder in TMPDIR (`aiaas-publish-*`,
`aiaas-pull-*`). A SIGKILLed one (an OOM kill of `publish --quantize` on a big model) ran no
cleanup and left its whole copy of the model there for ever, one more per retry, in what is
often a RAM-backed /tmp. Each folder is now held (an flock the kernel drops with its process)
and the next publish or pull removes the ones whose holder is gone, never a live one's.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from training.run_folders import HELD, held_folder

REPO = Path(__file__).resolve().parents[2]

# Takes its work folder as publish and pull do, puts a file in it, then dies by SIGKILL.
KILLED = """
import os, signal, sys
from training.run_folders import temp_work_folder
with temp_work_folder(sys.argv[1]) as work:
    (work / "given").mkdir()
    (work / "given" / "model.onnx.data").write_bytes(b"w" * 4096)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_holder(tmpdir: Path, prefix: str) -> Path:
    """The folder a SIGKILLed publish or pull left in `tmpdir`."""
    before = set(tmpdir.glob(prefix + "*"))
    run = subprocess.run(
        [sys.executable, "-c", KILLED, prefix],
        env=os.environ | {"PYTHONPATH": str(REPO), "TMPDIR": str(tmpdir)},
        capture_output=True,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    (left,) = set(tmpdir.glob(prefix + "*")) - before
    assert (left / "given" / "model.onnx.data").is_file()
    return left


def quiet(argv: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(argv)


@pytest.mark.parametrize("command", ["publish", "pull"])
def test_the_next_run_removes_a_killed_ones_work_folder_not_a_live_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))  # what TMPDIR sets
    prefix = f"aiaas-{command}-"
    dead = killed_holder(tmpdir, prefix)
    live, fd = held_folder(tmpdir, prefix, HELD)  # a publish or pull running now
    unheld = Path(tempfile.mkdtemp(prefix=prefix, dir=tmpdir))  # one between mkdtemp and lock
    model = onnx_factory.linear_classifier(tmp_path / "model.onnx")
    try:
        if command == "publish":
            argv = ["--store", str(tmp_path / "store"), "publish", str(model), "--name", "m"]
        else:
            source = tmp_path / "source"
            Registry(LocalStore(source)).publish(onnx_factory.manifest_for(model, "m", "1"), model)
            argv = ["--store", str(tmp_path / "store"), "pull", "--from", str(source), "m"]
        assert quiet([*argv, "--task", "other"] if command == "publish" else argv) == 0
        assert not dead.exists()
        assert sorted(tmpdir.iterdir()) == sorted([live, unheld])  # its own went as it ended
    finally:
        os.close(fd)
