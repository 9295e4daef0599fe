"""What `pip install aiaas` (no extras) runs imports with every extra's packages unimportable.

A subprocess blocks each module named in `infra.extras.EXTRA_OF` (boto3, torch, fastapi, ...)
before anything else is imported, then imports every serving module of `functions/` and `infra/`,
runs the handlers' init, and builds the whole CLI parser (`aiaas --help`). The fresh-venv test
(test_serving_install.py) checks the same against a real install; this one is fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from infra.cli.main import COMMANDS
from infra.extras import EXTRA_OF

REPO = Path(__file__).resolve().parents[2]

# Modules that exist to run an extra: the control plane is FastAPI (the `control` extra).
NEEDS_AN_EXTRA = ("functions.control", "functions.rollout")  # fastapi; boto3 (AWS only)

WITHOUT_EXTRAS = textwrap.dedent(
    """
    import importlib, importlib.abc, json, pkgutil, sys

    BLOCKED = set(sys.argv[1].split(","))

    class NoExtras(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoExtras())
    for name in BLOCKED:
        try:
            importlib.import_module(name)
            raise SystemExit(f"the blocker lets {name} through")
        except ImportError:
            pass

    import functions, infra
    skipped = tuple(sys.argv[2].split(","))
    imported = []
    for package in (functions, infra):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not module.name.startswith(skipped):
                importlib.import_module(module.name)  # handlers run their init: env below
                imported.append(module.name)

    from infra.cli.main import build_parser
    usage = build_parser([]).format_help()  # `aiaas --help`: every command module registers

    loaded = sorted({m.partition(".")[0] for m in sys.modules} & BLOCKED)
    with open(sys.argv[3], "w") as report:
        json.dump({"imported": imported, "loaded": loaded, "usage": usage}, report)
    """
)


def test_serving_modules_import_without_any_extra(tmp_path: Path) -> None:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("AIAAS_", "AWS_"))
    }
    env |= {
        "PYTHONPATH": str(REPO),
        "AIAAS_STORE": str(tmp_path / "store"),  # a directory store, as a serving install has
        "AIAAS_MODEL": "not-published",  # the predict handler's init tolerates a missing model
        "AIAAS_CACHE_DIR": str(tmp_path / "cache"),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            WITHOUT_EXTRAS,
            ",".join(sorted(EXTRA_OF)),
            ",".join(NEEDS_AN_EXTRA),
            str(tmp_path / "report.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["loaded"] == []
    imported = set(report["imported"])
    assert {
        "functions.predict.handler",
        "functions.batch.handler",
        "functions.health.handler",
        "infra.local.gateway",
        "infra.local.app",
        "infra.local.stack",
        "infra.cli.local_commands",
        "infra.cli.registry_commands",
        "infra.cli.publish_commands",
        "infra.cli.batch_commands",
    } <= imported
    assert not any(name.startswith(NEEDS_AN_EXTRA) for name in imported)
    assert all(command in report["usage"] for command in COMMANDS)
