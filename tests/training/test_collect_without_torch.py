"""A contributor without torch (a serving venv; Python 3.12/3.13, where no CPU torch wheel is
pinned) runs the suite: the training tests that need torch skip, the rest still run.

Before, tests/training/conftest.py imported training.job (torch) at the top, so the whole
directory, specs and data checks included, failed to collect and stopped the run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.torchless import NO_TORCH

REPO = Path(__file__).resolve().parents[2]

# The modules that import torch at the top, and two that need none of it.
MODULES = [
    "test_trainer.py",
    "test_export.py",
    "test_class_weight.py",
    "test_mixed_columns.py",
    "test_card_plots.py",
    "test_spec.py",
]


def test_the_training_tests_collect_and_skip_without_torch() -> None:
    run = NO_TORCH + "import pytest, sys\nsys.exit(pytest.main(sys.argv[1:]))\n"
    args = ["--collect-only", "-q", "-p", "no:cacheprovider", "-rs"]
    paths = [f"tests/training/{name}" for name in MODULES]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", run, *args, *paths],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "ERROR" not in out and re.search(r"^\d+ tests collected in ", out, re.M), out
    # The four torch modules are skipped whole, saying why; the spec tests are collected.
    assert out.count("training needs torch") == 4, out
    assert "tests/training/test_spec.py::" in out
    assert "tests/training/test_card_plots.py::test_the_loss_plot_ticks_whole_epochs" in out
