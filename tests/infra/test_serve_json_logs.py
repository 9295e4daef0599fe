"""`aiaas serve` in a container whose log collector parses every line: with
`AIAAS_LOG_FORMAT=json` its banner, its stop line and granian's own lines are JSON too (they
were text among the functions' JSON lines), and a bad value is refused at start."""

from __future__ import annotations

import json
import logging
import signal
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from functions.runtime.errors import AiaasError
from infra.cli.serve_start import check_function_settings
from infra.local import lambda_logs
from tests.functions.test_predict_events import publish_digits
from tests.infra.test_serve import TOKEN, ServeProcess

ROW = [0.5] * 64


def _lines(text: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in text.splitlines()]  # each one a JSON object
    assert all(isinstance(line, dict) for line in lines)
    return lines


@pytest.fixture
def json_format() -> Iterator[None]:
    lambda_logs.use_format("json")
    yield
    lambda_logs.use_format("text")


def test_every_line_from_start_to_stop_is_json_without_the_token(tmp_path: Path) -> None:
    store, _ = publish_digits(tmp_path)
    env = {"AIAAS_LOG_FORMAT": "json", "AIAAS_LOG_REQUESTS": "1", "AIAAS_API_TOKEN": TOKEN}
    env["POWERTOOLS_LOG_LEVEL"] = "INFO"  # the request lines too
    server = ServeProcess(store, env=env)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        server.wait_ready(auth)
        answer = httpx.post(
            f"{server.base}/models/digits-mlp/predict", json={"inputs": [ROW]}, headers=auth
        )
        assert answer.status_code == 200
        # A number past float32's range: its 422, and no numpy RuntimeWarning in text on stderr.
        row = [1e39, *ROW[1:]]
        answer = httpx.post(
            f"{server.base}/models/digits-mlp/predict", json={"inputs": [row]}, headers=auth
        )
        assert answer.status_code == 422 and "out of float32's range" in answer.json()["error"]
        assert httpx.get(f"{server.base}/v2/health/live").status_code == 401
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=10) == 0
    finally:
        server.stop()
    text = server.log.read_text()
    lines = _lines(text)
    messages = [line["message"] for line in lines]
    assert messages[0] == f"aiaas serve: http://127.0.0.1:{server.port}  store {store}  " + (
        "bearer token required"
    )
    assert "  POST /models/digits-mlp/predict   POST /v2/models/digits-mlp/infer" in messages
    assert lines[-1]["message"] == "aiaas serve: stopped"
    assert lines[-1]["logger"] == "aiaas.serve" and lines[-1]["level"] == "INFO"
    assert [line["status"] for line in lines if line["message"] == "request"] == [200, 422, 401]
    assert TOKEN not in text


def test_granians_own_lines_are_json(json_format: None, capsys: pytest.CaptureFixture[str]) -> None:
    """As granian's supervisor logs a worker's unexpected exit (`kill -9`, the OOM killer)."""
    from granian.log import LogLevels, configure_logging

    configure_logging(LogLevels.warning, lambda_logs.granian_config())
    try:
        logging.getLogger("_granian").error("Unexpected exit from worker-1")
    finally:
        configure_logging(LogLevels.warning)  # granian's own format again, for other tests
    (line,) = _lines(capsys.readouterr().out)
    assert (line["level"], line["logger"]) == ("ERROR", "_granian")
    assert line["message"] == "Unexpected exit from worker-1"


def test_pythons_warnings_go_to_stderr_as_json(
    json_format: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A library's warning (numpy's RuntimeWarning) was two lines of text on stderr."""
    warnings.warn_explicit("overflow somewhere", RuntimeWarning, "lib.py", 7)
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = _lines(captured.err)
    assert (line["level"], line["logger"]) == ("WARNING", "py.warnings")
    assert line["message"] == "lib.py:7: RuntimeWarning: overflow somewhere\n"


def test_serves_own_warnings_go_to_stderr_as_json(
    json_format: None, capsys: pytest.CaptureFixture[str]
) -> None:
    lambda_logs.say("aiaas serve: stopped; requests cut off", logging.WARNING, stderr=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = _lines(captured.err)
    assert (line["level"], line["message"]) == ("WARNING", "aiaas serve: stopped; requests cut off")


def test_text_stays_the_default_and_a_bad_format_is_refused_at_start(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lambda_logs.say("aiaas serve: stopped")
    assert capsys.readouterr().out == "aiaas serve: stopped\n"
    check_function_settings({"AIAAS_LOG_FORMAT": " JSON "})
    with pytest.raises(AiaasError) as refused:
        check_function_settings({"AIAAS_LOG_FORMAT": "jsonl"})
    assert refused.value.message == "AIAAS_LOG_FORMAT must be text or json; got 'jsonl'"
