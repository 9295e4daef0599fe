"""The functions' log lines locally, as Lambda writes them with `LogFormat: JSON`.

The handlers log through the standard library (Powertools' Logger cost ~14 ms of each cold
start); Lambda formats those records itself, and infra/local/lambda_logs.py does the same for
`aiaas serve`, `invoke` and `batch`.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from infra.local.lambda_logs import LambdaJsonFormatter, level_from
from infra.template import functions, load_template
from tests.functions.test_predict_events import publish_digits
from tests.infra.test_invoke import ROOT, aiaas_command


def record(**extra: object) -> logging.LogRecord:
    made = logging.LogRecord(
        "aiaas.runtime", logging.ERROR, "/x/pool.py", 7, "load %s", ("m",), None
    )
    made.funcName = "load"
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_a_record_becomes_lambdas_json_line_with_its_extra_fields() -> None:
    line = json.loads(LambdaJsonFormatter().format(record(request_id="req-1", status=503)))
    assert line["level"] == "ERROR" and line["logger"] == "aiaas.runtime"
    assert line["message"] == "load m" and line["timestamp"].endswith("Z")
    assert (line["request_id"], line["status"]) == ("req-1", 503)
    assert "errorType" not in line and "args" not in line and "msg" not in line


def test_an_exception_carries_type_message_trace_and_location() -> None:
    try:
        raise ValueError("no such tensor")
    except ValueError:
        failed = record(exc_info=sys.exc_info())
    line = json.loads(LambdaJsonFormatter().format(failed))
    assert (line["errorType"], line["errorMessage"]) == ("ValueError", "no such tensor")
    assert line["stackTrace"] and "raise ValueError" in "".join(line["stackTrace"])
    assert line["location"] == "/x/pool.py:load:7"


@pytest.mark.parametrize(
    ("env", "level"),
    [
        ({}, logging.INFO),  # Lambda's default application level in JSON format
        ({"AWS_LAMBDA_LOG_LEVEL": "WARN"}, logging.WARNING),
        ({"AWS_LAMBDA_LOG_LEVEL": "TRACE"}, logging.DEBUG),
        ({"AWS_LAMBDA_LOG_LEVEL": "FATAL"}, logging.CRITICAL),
        ({"AWS_LAMBDA_LOG_LEVEL": "ERROR", "POWERTOOLS_LOG_LEVEL": "DEBUG"}, logging.ERROR),
        ({"POWERTOOLS_LOG_LEVEL": "warning"}, logging.WARNING),
        ({"AWS_LAMBDA_LOG_LEVEL": "LOUD"}, logging.INFO),
    ],
)
def test_the_level_follows_lambdas_variable_then_powertools(
    env: dict[str, str], level: int
) -> None:
    assert level_from(env) == level


def test_every_function_in_the_template_asks_lambda_for_json_logs() -> None:
    specs = functions(load_template(ROOT / "template.yaml"))
    assert specs and all(
        spec.properties.get("LoggingConfig", {}).get("LogFormat") == "JSON"
        for spec in specs.values()
    ), {name: spec.properties.get("LoggingConfig") for name, spec in specs.items()}


@pytest.mark.parametrize(("level", "logged"), [("INFO", True), ("WARN", False)])
def test_aiaas_invoke_writes_the_functions_lines_as_json_at_its_level(
    tmp_path: Path, level: str, logged: bool
) -> None:
    publish_digits(tmp_path)
    env = {**os.environ, "AIAAS_STORE": str(tmp_path / "store"), "AWS_LAMBDA_LOG_LEVEL": level}
    env |= {"AIAAS_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("POWERTOOLS_LOG_LEVEL", None)
    result = subprocess.run(
        [*aiaas_command(), "invoke", "Predictdigitsmlp", "-e", "events/predict_simple.json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert json.loads(result.stdout)["statusCode"] == 200  # stdout: the response alone
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    loaded = [line for line in lines if line.get("message", "").startswith("loaded digits-mlp:1")]
    assert bool(loaded) is logged, result.stderr
    if logged:
        assert loaded[0]["level"] == "INFO" and loaded[0]["logger"] == "aiaas.runtime"


# onnxruntime (1.2x+) starts a telemetry client with its first session: it keeps a device id and
# an event store under $XDG_CACHE_HOME (else ~/.cache) and posts to Microsoft's collector. On
# Lambda, where only /tmp is writable, it logged a coloured plain-text warning at every cold
# start (the one non-JSON line of a function's log); and it sends from the function.
_ORT_START = """
import sys
import numpy as np
import onnxruntime as ort
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
session.run(None, {session.get_inputs()[0].name: np.zeros((1, 3), np.float32)})
"""


def image_environment() -> dict[str, str]:
    """The training image's ENV (training/Dockerfile's last stage, `ENV A=1 \\` lines)."""
    text = (ROOT / "training" / "Dockerfile").read_text().replace("\\\n", " ")
    found: dict[str, str] = {}
    for line in text.split("\nFROM ")[-1].splitlines():
        if line.startswith("ENV "):
            found.update(item.split("=", 1) for item in line.split()[1:])
    return found


def function_environment() -> dict[str, str]:
    return functions(load_template())["Predictdigitsmlp"].environment


@pytest.mark.parametrize("environment", [function_environment, image_environment])
def test_onnxruntime_keeps_no_telemetry_and_logs_no_plain_text_line(
    tmp_path: Path, environment: Callable[[], dict[str, str]]
) -> None:
    """A predict function (its log is JSON lines) and the training job (its parity check) both
    start onnxruntime sessions; neither keeps telemetry, nor sends it."""
    from tests.onnx_factory import linear_classifier

    model = linear_classifier(tmp_path / "m.onnx", features=3, classes=2)
    lambda_tmp, home = tmp_path / "lambda-tmp", tmp_path / "home"  # Lambda's /tmp, a HOME
    lambda_tmp.mkdir()
    home.mkdir()
    env = {
        name: str(lambda_tmp) + value[len("/tmp") :] if value.startswith("/tmp") else value
        for name, value in environment().items()
    }
    env |= {"PATH": os.environ["PATH"], "HOME": str(home), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", _ORT_START, str(model)],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert result.stdout + result.stderr == ""
    assert [*lambda_tmp.rglob("*"), *home.rglob("*")] == []
