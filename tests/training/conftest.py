"""Training fixtures: tiny specs and data files, and one published model per recipe (trained once).

Training needs torch (the 'training' extra); the specs, data and check tests here do not. So
this conftest imports no torch module: the fixtures that train import it when first used and
skip their tests on an install without torch (a contributor's serving venv, or Python 3.12/3.13
where the dev pin has no local CPU wheel), instead of the whole directory failing to collect.
"""

from __future__ import annotations

import copy
import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.torchless import torch_or_skip
from training.spec import JobSpec, parse_spec

if TYPE_CHECKING:
    from training.job import JobResult


def run_job(*args: Any, **kwargs: Any) -> JobResult:
    """training.job.run_job, imported on first use: it imports torch."""
    torch_or_skip()
    from training.job import run_job as run

    return run(*args, **kwargs)


# One brief job per recipe on bundled or generated data; 1-2 epochs each.
RECIPE_JOBS: dict[str, dict[str, Any]] = {
    "linear": {"task": "regression", "dataset": {"path": "bundled:diabetes.csv", "target": "progression"}},
    "logistic": {"task": "classification", "dataset": {"path": "bundled:iris.csv", "target": "species"}, "epochs": 2},
    "mlp": {"task": "classification", "dataset": {"path": "bundled:digits.npz"}, "recipe_params": {"hidden": [32]}},
    "cnn": {
        "task": "classification",
        "dataset": {"path": "bundled:digits.npz", "input_shape": [1, 8, 8]},
        "recipe_params": {"channels": [4], "hidden": 16},
        "export": {"quantize": True, "max_metric_drop": 100.0, "quantize_for": "size"},
    },
    "gru": {"task": "classification", "dataset": {"path": "generated:waveforms"}, "recipe_params": {"hidden_size": 8}, "export": {"exporter": "torchscript"}},
    "lstm": {"task": "regression", "dataset": {"path": "generated:ramp-trend"}, "recipe_params": {"hidden_size": 8}, "export": {"exporter": "torchscript"}},
    "transformer": {
        "task": "classification",
        "dataset": {"path": "bundled:intents.csv", "text_column": "text", "target": "intent"},
        "recipe_params": {"d_model": 16, "heads": 2, "layers": 1, "ff_size": 32, "max_length": 16},
    },
}  # fmt: skip


def spec_dict(recipe: str, **overrides: Any) -> dict[str, Any]:
    """A small valid spec for `recipe` (see RECIPE_JOBS), with top-level `overrides`."""
    job = copy.deepcopy(RECIPE_JOBS[recipe])  # a test that edits its spec's dataset edits a copy
    params = job.pop("recipe_params", {})
    data: dict[str, Any] = {
        "name": f"tiny-{recipe}",
        "recipe": {"name": recipe, "params": params},
        "epochs": 1,
        "batch_size": 64,
        "learning_rate": 0.01,
        "seed": 0,
        **job,
    }
    data.update(overrides)
    return data


def tiny_spec(recipe: str, **overrides: Any) -> JobSpec:
    return parse_spec(spec_dict(recipe, **overrides))


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def blobs_rows(rows: int = 60, seed: int = 0) -> list[list[Any]]:
    """Three separable clusters in 2-D: a tabular classification set."""
    rng = np.random.default_rng(seed)
    out: list[list[Any]] = []
    for i in range(rows):
        label = ["red", "green", "blue"][i % 3]
        centre = {"red": (0, 0), "green": (4, 0), "blue": (0, 4)}[label]
        a, b = rng.normal(centre, 0.5)
        out.append([round(float(a), 4), round(float(b), 4), label])
    return out


@dataclass
class Published:
    registry: Registry
    store_dir: Path
    results: dict[str, JobResult]


# The published models' card importance: a few of its rows, not up to 16 (the sequence and
# image models spent ~10 s of the fixture on them). What the tests read of these models is not
# the plot; the step itself still runs on each recipe, and its budget is tested on its own
# (test_importance_budget.py, test_wide_importance.py).
BRIEF_CARD = {"importance_seconds": 3.0}


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    """Every recipe trained briefly, exported, parity-checked and published to one local store."""
    root = tmp_path_factory.mktemp("trained")
    registry = Registry(LocalStore(root / "store"))
    results = {
        recipe: run_job(
            tiny_spec(recipe, export={**RECIPE_JOBS[recipe].get("export", {}), **BRIEF_CARD}),
            registry,
            root / "runs" / recipe,
            publish_model=True,
            alias="production",
            progress=False,
        )
        for recipe in RECIPE_JOBS
    }
    return Published(registry, root / "store", results)


@pytest.fixture
def run_tiny(tmp_path: Path) -> Callable[..., JobResult]:
    """Run a tiny job into a fresh local store under tmp_path."""

    def run(spec: JobSpec, *, publish: bool = True, registry: Registry | None = None) -> JobResult:
        reg = registry or Registry(LocalStore(tmp_path / "store"))
        return run_job(spec, reg, tmp_path / "run", publish_model=publish, progress=False)

    return run
