"""A job's progress: a bar on a terminal, plain epoch lines in a log, nothing with --no-progress."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from infra.cli.main import main
from tests.torchless import torch_or_skip
from tests.training.conftest import spec_dict
from training.progress import LOG_EVERY_S, EpochProgress


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_the_first_epoch_then_one_line_per_interval_and_the_last() -> None:
    log, clock = io.StringIO(), _Clock()
    with EpochProgress("m", 100, None, stream=log, clock=clock) as progress:
        for epoch in range(1, 71):  # early stopping ends it at 70 of 100
            clock.now = epoch * LOG_EVERY_S / 10
            progress.update(epoch, {"loss": 1 / epoch, "val_accuracy": 0.5})
    assert log.getvalue().splitlines() == [
        "m: epoch 1/100 loss=1.0000 val_accuracy=0.5000 (3.0 s)",
        "m: epoch 11/100 loss=0.0909 val_accuracy=0.5000 (33.0 s)",
        "m: epoch 21/100 loss=0.0476 val_accuracy=0.5000 (63.0 s)",
        "m: epoch 31/100 loss=0.0323 val_accuracy=0.5000 (93.0 s)",
        "m: epoch 41/100 loss=0.0244 val_accuracy=0.5000 (123.0 s)",
        "m: epoch 51/100 loss=0.0196 val_accuracy=0.5000 (153.0 s)",
        "m: epoch 61/100 loss=0.0164 val_accuracy=0.5000 (183.0 s)",
        "m: epoch 70/100 loss=0.0143 val_accuracy=0.5000 (210.0 s)",
    ]


def test_a_terminal_gets_the_bar_and_no_progress_gets_nothing() -> None:
    terminal = _Terminal()
    with EpochProgress("m", 2, None, stream=terminal) as progress:
        progress.update(1, {"loss": 0.5})
        progress.update(2, {"loss": 0.25})
    assert "m: 100%" in terminal.getvalue() and "2/2" in terminal.getvalue()
    assert "epoch 2/2" not in terminal.getvalue()  # the bar, not log lines
    for stream in (_Terminal(), io.StringIO()):
        with EpochProgress("m", 2, False, stream=stream) as progress:
            progress.update(1, {"loss": 0.5})
        assert stream.getvalue() == ""


def test_aiaas_train_writing_to_a_log_says_which_epoch_it_is_on(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    torch_or_skip()  # it trains
    # What a container's log (or `2>&1 | tee`) holds: stderr is a pipe, not a terminal.
    # Before, tqdm turned itself off there and the job printed nothing until it ended.
    # In process: stderr captured by capfd is no terminal either (a subprocess cost 8 s).
    spec = tmp_path / "job.yaml"
    export = {"exporter": "torchscript"}  # the epoch lines are the point, not dynamo's export
    spec.write_text(yaml.safe_dump(spec_dict("logistic", name="iris-log", epochs=3, export=export)))
    code = main(["train", str(spec), "--out", str(tmp_path / "r")])
    stderr = capfd.readouterr().err
    assert code == 0, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("iris-log: epoch")]
    assert [line.split(" loss=")[0] for line in lines] == [
        "iris-log: epoch 1/3",
        "iris-log: epoch 3/3",
    ]
    assert "val_loss=" in lines[1] and "val_accuracy=" in lines[1]
    assert "\r" not in stderr  # no bar redraws in a log
