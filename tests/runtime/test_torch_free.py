"""The serving side imports and predicts with torch unimportable, as inside a Lambda bundle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.publishing import publish_linear
from tests.torchless import NO_TORCH

REPO = Path(__file__).resolve().parents[2]

WITHOUT_TORCH = NO_TORCH + textwrap.dedent(
    """
    import importlib, importlib.abc, json, pkgutil, sys
    try:
        import torch  # noqa: F401
        raise SystemExit("the torch blocker does not work")
    except ImportError:
        pass

    import functions
    imported = []
    for module in pkgutil.walk_packages(functions.__path__, "functions."):
        # Handler modules load their model at import time; the predict one is imported below.
        if not module.name.endswith(".handler"):
            importlib.import_module(module.name)
            imported.append(module.name)

    import numpy as np
    from pathlib import Path
    from functions.runtime.cache import ArtifactCache
    from functions.runtime.pool import ModelPool
    from functions.runtime.served import ServedModel
    from functions.runtime.registry import Registry
    from functions.runtime.store import LocalStore

    store = LocalStore(sys.argv[1])
    pool = ModelPool(Registry(store), ArtifactCache(store, Path(sys.argv[2])))
    model = ServedModel(pool, "iris@production", ttl=60).current()
    logits = model.predict({"x": np.ones((2, 4), np.float32)})["logits"]

    from functions.predict import handler  # the Lambda entry point, configured by env
    imported.append(handler.__name__)

    leaked = sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "training", "infra")))
    # stdout carries the handler's structured logs; the report goes to its own file.
    Path(sys.argv[3]).write_text(json.dumps({"imported": imported, "version": model.manifest.version,
                                             "logits": logits.tolist(), "leaked": leaked}))
    """
)


def test_functions_import_and_predict_without_torch(tmp_path: Path) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    publish_linear(registry, tmp_path, "iris", "1")
    registry.set_alias("iris", "production", "1")
    env = os.environ | {
        "PYTHONPATH": str(REPO),
        "AIAAS_STORE": str(tmp_path / "store"),
        "AIAAS_MODEL": "iris",
        "AIAAS_CACHE_DIR": str(tmp_path / "cache"),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            WITHOUT_TORCH,
            str(tmp_path / "store"),
            str(tmp_path / "cache"),
            str(tmp_path / "report.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["leaked"] == []
    assert report["version"] == "1"
    assert len(report["logits"]) == 2 and len(report["logits"][0]) == 3
    runtime_modules = {p.stem for p in (REPO / "functions" / "runtime").glob("*.py")} - {"__init__"}
    assert {f"functions.runtime.{m}" for m in runtime_modules} <= set(report["imported"])
    assert "functions.predict.handler" in report["imported"]
