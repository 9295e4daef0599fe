"""The Lambda bundle's builder (functions/lambda_bundle.py, run by `sam build` through
functions/Makefile): it follows the template, and a cold start imports every module of the
predict path from valid bytecode. tests/infra/test_deploy_bundles.py checks the arm64 bundle
`sam build` and `sam package` make; here the builder makes the same for this machine, so the
bundle can run."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bench.bundle_size import python312
from bench.models import publish_mlp
from bench.predict_latency import MODEL, events
from functions import lambda_bundle
from infra.template import functions, load_template

ROOT = Path(__file__).resolve().parents[2]
MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}

# Run in the bundle's own python3.12, after the handler answered: every module it loaded from
# the bundle, and whether its .pyc was there and matched its source.
AUDIT = """
import importlib.util, json, sys
from functions.predict.handler import handler
assert handler(json.loads(sys.argv[1]))["statusCode"] == 200
found = {}
for name, module in list(sys.modules.items()):
    source, cached = getattr(module, "__file__", None), getattr(module, "__cached__", None)
    if not source or not source.startswith(sys.argv[2]) or not source.endswith(".py"):
        continue
    try:
        head = open(cached, "rb").read(16)
    except (OSError, TypeError):
        found[name] = "no .pyc"
        continue
    digest = importlib.util.source_hash(open(source, "rb").read())
    found[name] = "ok" if head[4:8] == b"\\x03\\0\\0\\0" and head[8:16] == digest else "stale"
print(json.dumps(found))
"""


def test_the_builder_follows_the_template() -> None:
    template = load_template(ROOT / "template.yaml")
    specs = functions(template)
    assert specs
    for name, spec in specs.items():
        assert spec.properties["CodeUri"] == "functions/", name
        assert spec.properties["Runtime"] == f"python{lambda_bundle.RUNTIME}", name
    resources = template["Resources"]
    assert all(resources[name]["Metadata"] == {"BuildMethod": "makefile"} for name in specs)
    (architecture,) = template["Globals"]["Function"]["Architectures"]
    makefile = (ROOT / "functions" / "Makefile").read_text()
    assert re.search(rf"^MACHINE \?= {MACHINES[architecture]}$", makefile, re.MULTILINE)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_cold_start_imports_the_predict_path_from_valid_bytecode(
    tmp_path: Path, x86_bundle: Path
) -> None:
    bundle = x86_bundle
    assert not (bundle / "functions" / "lambda_bundle.py").exists()
    model_dir = tmp_path / "work"
    publish_mlp(model_dir / "store", MODEL)
    event = json.dumps(events(np.zeros((1, 64), np.float32))["simple JSON"])
    env = {
        "PYTHONDONTWRITEBYTECODE": "1",  # /var/task is read-only
        "AIAAS_STORE": str(model_dir / "store"),
        "AIAAS_CACHE_DIR": str(model_dir / "cache"),
        "AIAAS_MODEL": MODEL,
        "AIAAS_MODEL_SELECTOR": "@production",
        "AWS_LAMBDA_LOG_LEVEL": "WARN",
    }
    script = f"import sys; sys.path.insert(0, {str(bundle)!r})\n{AUDIT}"
    done = subprocess.run(
        [python312(), "-S", "-c", script, event, str(bundle) + "/"],
        env=env, cwd=bundle, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    found = json.loads(done.stdout.splitlines()[-1])
    assert {"functions.predict.handler", "numpy", "onnxruntime"} <= set(found)
    assert {name: state for name, state in found.items() if state != "ok"} == {}
