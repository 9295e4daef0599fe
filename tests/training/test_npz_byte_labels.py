"""An NPZ whose labels are bytes (`dtype S`: h5py's strings, `np.char.encode`) trains classes of
their text: the model was published with the classes "b'no'" and "b'yes'", the repr of each,
which every answer, batch's pred_label and the card then named. hunt_datafiles 8. Real parts:
an .npz written by numpy, a one-epoch `aiaas train --publish` (torch), the manifest.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.torchless import torch_or_skip


def _train(tmp_path: Path, data: Path, *flags: str) -> tuple[int, str]:
    spec = tmp_path / "job.yaml"
    spec.write_text(
        f"name: bytes\ntask: classification\ndataset:\n  path: {data}\n"
        "recipe:\n  name: logistic\nepochs: 1\n"
        "export: {exporter: torchscript}\n"  # the classes' text is the point, not dynamo's export
    )
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["--store", str(tmp_path / "store"), "train", str(spec), *flags])
    return code, err.getvalue()


def test_byte_labels_are_classes_of_their_text(tmp_path: Path) -> None:
    torch_or_skip()
    x = np.random.default_rng(0).normal(size=(60, 3))
    data = tmp_path / "data.npz"
    np.savez(data, x=x, y=np.where(x[:, 0] > 0, b"yes", b"no"))
    code, err = _train(tmp_path, data, "--publish")
    assert code == 0, err
    assert Registry(LocalStore(tmp_path / "store")).manifest("bytes", "1").labels == ("no", "yes")


def test_bytes_that_are_no_utf8_text_are_refused_at_check(tmp_path: Path) -> None:
    data = tmp_path / "data.npz"
    np.savez(data, x=np.zeros((20, 2)), y=np.array([b"\xff\xfe"] * 10 + [b"a"] * 10))
    code, err = _train(tmp_path, data, "--check")
    assert code == 1
    assert "data.npz array 'y' holds bytes that are not UTF-8 text" in err, err
    assert "y.astype(str)" in err, err
