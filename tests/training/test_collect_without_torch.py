"""A contributor without torch (a serving venv; Python 3.12/3.13, where no CPU torch wheel is
pinned) runs the suite: the training tests that need torch skip, the rest still run.

Before, tests/training/conftest.py imported training.job (torch) at the top, so the whole
directory, specs and data checks included, failed to collect and stopped the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.torchless import NO_TORCH

REPO = Path(__file__).resolve().parents[2]

# What pytest does at collection, in a bare process (a pytest inside took 5-10x longer): the
# conftest, then each module, a skip at import being a module skipped.
COLLECT = NO_TORCH + textwrap.dedent(
    """
    import importlib, json, pytest
    import tests.training.conftest
    outcomes = {}
    for name in ["test_trainer", "test_export", "test_class_weight", "test_mixed_columns",
                 "test_dynamo_output_names", "test_card_plots", "test_card_readable", "test_spec"]:
        try:
            importlib.import_module("tests.training." + name)
            outcomes[name] = "collected"
        except pytest.skip.Exception as skip:
            outcomes[name] = "skipped: " + skip.msg
    print(json.dumps(outcomes))
    """
)


def test_the_training_tests_collect_and_skip_without_torch() -> None:
    done = subprocess.run(
        [sys.executable, "-c", COLLECT],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    outcomes = json.loads(done.stdout)
    skipped = "skipped: training needs torch: pip install 'aiaas[training]'"
    for name in ["test_trainer", "test_export", "test_class_weight", "test_mixed_columns"]:
        assert outcomes[name] == skipped, outcomes
    assert outcomes["test_dynamo_output_names"] == skipped, outcomes
    # These need no torch to import: the loss-plot tests alone skip, when they run.
    for name in ["test_card_plots", "test_card_readable", "test_spec"]:
        assert outcomes[name] == "collected", outcomes
