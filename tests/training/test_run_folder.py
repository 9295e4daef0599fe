"""A run writes into its own folder beside `--out` and swaps it in only once it succeeded:
a failed run leaves the previous run's model, manifest and card as they were."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.cli.main import main
from tests.torchless import torch_or_skip

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / "training" / "specs"


def _spec(tmp_path: Path, name: str, extra: str = "") -> Path:
    spec = tmp_path / name
    text = (SPECS / "iris-logistic.yaml").read_text().replace("epochs: 60", "epochs: 2")
    if "export:" not in extra:  # the run folders are the point, not dynamo's export (seconds)
        text += "export: {exporter: torchscript}\n"
    spec.write_text(text + extra)
    return spec


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_failed_run_keeps_the_previous_runs_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch_or_skip()
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine where torch sees no CUDA GPU")
    run = tmp_path / "runs" / "iris"
    assert main(["train", str(_spec(tmp_path, "ok.yaml")), "--out", str(run), "--no-progress"]) == 0
    before = _files(run)
    assert {"model.float32.onnx", "manifest.json", "card/card.md"} <= set(before)
    capsys.readouterr()
    # No GPU: `--check` says so as the run does (it called the spec valid), and the run fails
    # before training; an opset the exporter cannot convert to fails after training. Each deleted the
    # previous run's model, manifest and card (an empty card/ was left).
    cuda = _spec(tmp_path, "cuda.yaml", "device: cuda\n")
    message = "aiaas train: error: spec field 'device' is 'cuda' but torch sees no CUDA GPU"
    assert main(["train", str(cuda), "--check"]) == 1
    assert capsys.readouterr().err.startswith(message)
    assert main(["train", str(cuda), "--out", str(run), "--no-progress"]) == 1
    assert capsys.readouterr().err.startswith(message)
    # (torch 2.13's dynamo exporter cannot convert this model's Sub down to opset 13)
    opset = _spec(tmp_path, "opset.yaml", "export: {opset: 13}\n")
    assert main(["train", str(opset), "--out", str(run), "--no-progress"]) == 1
    assert "export.opset 13" in capsys.readouterr().err
    assert _files(run) == before
    assert sorted(p.name for p in run.parent.iterdir()) == ["iris"]  # no work folder left


def test_two_runs_of_one_spec_at_once_both_publish(tmp_path: Path) -> None:
    # Both used .aiaas/runs/<name> and each wiped it while the other wrote there: one run
    # published, the other failed after training on the other's sha256.
    torch_or_skip()
    specs = [_spec(tmp_path, f"s{seed}.yaml") for seed in (1, 2)]
    for seed, spec in enumerate(specs, 1):
        spec.write_text(spec.read_text().replace("seed: 0", f"seed: {seed}"))
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "infra.cli.main", "--store", str(tmp_path / "st"), "train",
             str(spec), "--publish", "--no-progress"],
            cwd=tmp_path, env=os.environ | {"PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for spec in specs
    ]  # fmt: skip
    done = [run.communicate(timeout=240) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in done]
    published = sorted(out.split("published iris-logistic:")[1][0] for out, _ in done)
    assert published == ["1", "2"]
    assert (tmp_path / ".aiaas" / "runs" / "iris-logistic" / "manifest.json").is_file()
    assert sorted(p.name for p in (tmp_path / ".aiaas" / "runs").iterdir()) == ["iris-logistic"]


def test_a_sigkilled_runs_work_folder_goes_at_the_next_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A SIGKILLed run (an OOM kill) runs no cleanup: its .<name>.run-XXXX folder stayed for ever,
    # one more per kill. The next run removes it (its lock died with it), never a live run's.
    torch_or_skip()
    import fcntl
    import signal
    import tempfile
    import time

    runs = tmp_path / "runs"
    run = runs / "iris"
    slow = _spec(tmp_path, "slow.yaml")
    slow.write_text(slow.read_text().replace("epochs: 2", "epochs: 100000").replace(
        "patience: 15", "patience: 100000"))  # fmt: skip
    killed = subprocess.Popen(
        [sys.executable, "-m", "infra.cli.main", "--store", str(tmp_path / "st"), "train",
         str(slow), "--out", str(run), "--no-progress"],
        cwd=tmp_path, env=os.environ | {"PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(runs.glob(".iris.run-*/card")) and killed.poll() is None:
        assert time.monotonic() < deadline, "the run never made its work folder"
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=30) == -signal.SIGKILL
    left = [p.name for p in runs.glob(".iris.run-*")]
    assert len(left) == 1
    # A live run's folder (this test holds its lock, as a run does) stays.
    live = Path(tempfile.mkdtemp(prefix=".iris.run-", dir=runs))
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    (live / "card").mkdir()
    try:
        caplog.set_level("INFO", logger="aiaas.training")
        assert main(["-v", "train", str(_spec(tmp_path, "ok.yaml")), "--out", str(run),
                     "--no-progress"]) == 0  # fmt: skip
    finally:
        os.close(fd)
    assert sorted(p.name for p in runs.iterdir()) == sorted(["iris", live.name])
    said = [r.getMessage() for r in caplog.records if "work folder" in r.getMessage()]
    assert said == [f"removed 1 work folder(s) killed runs left in {runs}: {left[0]}"]
