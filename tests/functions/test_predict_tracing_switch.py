"""`AIAAS_TRACING=true` where aws-xray-sdk is not installed (the Lambda bundle): served, said.

Powertools' Tracer imports aws-xray-sdk when it is built. The bundle `sam build` ships does not
hold it (functions/requirements.txt), so a function with the switch on failed at init: on Lambda
a Runtime.ImportModuleError on every cold start, every predict a 502. The handler module is
imported here in a fresh interpreter, as Lambda's runtime imports it, with the SDK made
unimportable the way Python marks a module absent (None in sys.modules); and with it installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.functions.test_predict_events import EVENTS, MODEL, publish_digits

REPO = Path(__file__).resolve().parents[2]
INVOKE = """
import json, sys
if sys.argv[1] == "absent":
    sys.modules["aws_xray_sdk"] = None  # import aws_xray_sdk... raises ImportError
from functions.predict.handler import handler
print("traced:", hasattr(handler, "__wrapped__"))  # Powertools' decorator wraps it
print(json.dumps(handler(json.load(open(sys.argv[2])), None)))
"""


def _invoke(tmp_path: Path, sdk: str) -> subprocess.CompletedProcess[str]:
    store, _ = publish_digits(tmp_path)
    env = {
        **os.environ,
        "AIAAS_STORE": str(store),
        "AIAAS_MODEL": MODEL,
        "AIAAS_TRACING": "true",
        "AIAAS_CACHE_DIR": str(tmp_path / "cache"),
        "AWS_XRAY_SDK_ENABLED": "false",  # no X-Ray daemon here: the SDK records nothing
        "PYTHONPATH": str(REPO),
    }
    return subprocess.run(
        [sys.executable, "-c", INVOKE, sdk, str(EVENTS / "predict_simple.json")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def test_without_the_sdk_the_function_serves_and_says_why_it_is_untraced(tmp_path: Path) -> None:
    done = _invoke(tmp_path, "absent")
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout.strip().splitlines()[-1])
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["predictions"]
    logged = done.stdout + done.stderr
    assert "AIAAS_TRACING is on but aws-xray-sdk is not installed" in logged
    assert "serving untraced" in logged
    assert "traced: False" in done.stdout


def test_with_the_sdk_the_handler_is_traced(tmp_path: Path) -> None:
    pytest.importorskip("aws_xray_sdk", reason="the `tracing` extra is not installed")
    done = _invoke(tmp_path, "installed")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["statusCode"] == 200
    assert "not installed" not in done.stdout + done.stderr
    assert "traced: True" in done.stdout
