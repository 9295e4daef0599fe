"""Reading a model's signature (what `aiaas publish` and training do before uploading) leaves
its weights where they are: onnxruntime's session for it does not repack the matrices it would
multiply, which copied every weight (a 2.5 GB model took 2.4 GB of memory to publish). Measured
as a fresh process's peak RSS around the read of a 256 MB MatMul weight kept in external data
(a sparse file: nothing written), 509-553 MB before and under 64 MB now, or inside a single
file (read through the graph file that maps its weights): there the code before grew the
process by 553 MB in one run and by nothing in others (not understood), so that case guards
the new behaviour without telling the old one apart every time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tests import onnx_factory

REPO = Path(__file__).resolve().parents[2]
SIDE = 8192  # an 8192 x 8192 float32 weight: 256 MiB
READ = r"""
import resource, sys
from pathlib import Path
from functions.runtime.introspect import read_signature
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sig = read_signature(Path(sys.argv[1]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) // 1024, sig.inputs[0].name, sig.outputs[0].shape)
"""


def matmul(path: Path, external: bool) -> Path:
    """y = x @ w, w's 8192 x 8192 zeros read from `w.bin` beside the model, or inside it."""
    onnx_factory.external_matmul(path, "w.bin", SIDE)
    if external:
        with (path.parent / "w.bin").open("wb") as data:
            data.truncate(SIDE * SIDE * 4)  # sparse: zeros without writing them
        return path
    model = onnx.load(path, load_external_data=False)
    model.graph.initializer[0].CopyFrom(
        numpy_helper.from_array(np.zeros((SIDE, SIDE), np.float32), "w")
    )
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB, sparse files: Linux")
@pytest.mark.parametrize("external", [True, False], ids=["external-data", "single-file"])
def test_the_signature_read_does_not_copy_the_weights(tmp_path: Path, external: bool) -> None:
    model = matmul(tmp_path / "m" / "model.onnx", external)
    done = subprocess.run(
        [sys.executable, "-c", READ, str(model)],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    grown_mb, name, shape = done.stdout.split(maxsplit=2)
    assert (name, shape.strip()) == ("x", "(-1, 8192)")
    assert int(grown_mb) < 64, f"the read grew the process by {grown_mb} MB for 256 MB of weights"
