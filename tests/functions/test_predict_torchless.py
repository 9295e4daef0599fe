"""The Lambda bundle has no torch: the handlers must import and serve with it absent.

A fresh interpreter whose import system refuses `torch`, `training` and `infra` (as a Lambda
bundle built from functions/ would) imports the handlers (predict, health, the drift job) and answers the golden events.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from functions.runtime.explain.background import BACKGROUND_FILE, summarize
from tests.functions.test_predict_events import EVENTS, MODEL, publish_digits

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import importlib.abc, json, sys

BLOCKED = ("torch", "training", "infra")

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not in the Lambda bundle")
        return None

sys.meta_path.insert(0, NoTorch())
for name in [m for m in sys.modules if m.split(".")[0] in BLOCKED]:
    del sys.modules[name]

from functions.predict.handler import handler as predict
from functions.health.handler import handler as health
from functions.drift.handler import handler as drift
from functions.shadow.handler import handler as shadow

statuses = {}
for name in sys.argv[2:]:
    with open(f"{sys.argv[1]}/{name}.json") as f:
        event = json.load(f)
    if name == "drift_schedule":  # the scheduled drift job answers a summary, not HTTP
        statuses[name] = 200 if drift(event, None) == {"versions": 0, "drifted": []} else 500
        continue
    if name == "shadow_logs":  # ShadowFunction answers a count of the copies it read
        report = shadow(event, None)
        statuses[name] = 200 if report["copies"] > 0 and report["not_copies"] == 0 else 500
        continue
    answer = health if name in ("health_live", "health_ready", "server_metadata") else predict
    statuses[name] = answer(event, None)["statusCode"]
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(BLOCKED))
print(json.dumps({"statuses": statuses, "loaded": loaded}))
"""


def handler_env(store: Path, cache: Path) -> dict[str, str]:
    """A fresh interpreter's environment for the handlers on the digits model in `store`."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AIAAS_MODEL": MODEL,
        "AIAAS_MODEL_SELECTOR": "@production",
        "AIAAS_STORE": str(store),
        "AIAAS_CACHE_DIR": str(cache),
        "AIAAS_DISABLE_METRICS": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }


def test_handlers_import_and_serve_with_torch_absent(tmp_path: Path) -> None:
    store, _ = publish_digits(tmp_path)
    # The explain event needs a background (training stores one; this model was built by hand).
    pixels = np.random.default_rng(0).random((30, 64)) * 16
    (store / "models/digits-mlp/versions/1" / BACKGROUND_FILE).write_text(
        summarize(pixels, clusters=5).to_json()
    )
    env = handler_env(store, tmp_path / "cache")
    names = [p.stem for p in sorted(EVENTS.glob("*.json")) if not p.stem.startswith("batch_")]
    assert len(names) >= 8
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(EVENTS), *names],
        env=env,
        cwd=tmp_path,  # not the repo root: only PYTHONPATH makes `functions` importable
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert report["statuses"] == dict.fromkeys(names, 200)
