"""`aiaas invoke FUNCTION -e EVENT` as a real subprocess, like `sam local invoke`.

stdout carries only the function's response (logs and metrics go to stderr), so it parses as
one JSON document.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.functions.test_predict_events import (
    EVENTS,
    MODEL,
    golden_rows,
    publish_digits,
    reference_logits,
)

ROOT = Path(__file__).resolve().parents[2]


def aiaas_command() -> list[str]:
    """The installed `aiaas` entry point beside this interpreter, else the module."""
    script = Path(sys.executable).parent / "aiaas"
    return [str(script)] if script.exists() else [sys.executable, "-m", "infra.cli.main"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("invoke")
    publish_digits(root)
    return root


def invoke(root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIAAS_STORE": str(root / "store"), "AIAAS_CACHE_DIR": str(root / "cache")}
    env.pop("AIAAS_MODEL", None)
    return subprocess.run(
        [*aiaas_command(), "invoke", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def response_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_invoke_predict_with_the_golden_simple_event(root: Path) -> None:
    result = invoke(root, "Predictdigitsmlp", "-e", "events/predict_simple.json")
    response = response_of(result)
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert (body["model"], body["version"]) == (MODEL, "1")
    expected = reference_logits(root / "mlp.onnx", golden_rows())
    np.testing.assert_allclose(body["outputs"]["logits"], expected, rtol=1e-5, atol=1e-6)
    assert [len(p["top_k"]) for p in body["predictions"]] == [3, 3]
    assert "loaded digits-mlp:1" in result.stderr  # the function's log line, not on stdout


def test_invoke_binary_event_from_stdin(root: Path) -> None:
    event = (EVENTS / "predict_v2_infer_binary.json").read_text()
    response = response_of(invoke(root, "Predictdigitsmlp", "-e", "-", stdin=event))
    assert (response["statusCode"], response["isBase64Encoded"]) == (200, True)
    raw = base64.b64decode(response["body"])
    length = int(response["headers"]["inference-header-content-length"])
    logits = np.frombuffer(raw[length:], "<f4").reshape(2, 10)
    np.testing.assert_allclose(
        logits, reference_logits(root / "mlp.onnx", golden_rows()), rtol=1e-5, atol=1e-6
    )


def test_invoke_health(root: Path) -> None:
    response = response_of(invoke(root, "Health", "-e", str(EVENTS / "health_ready.json")))
    assert (response["statusCode"], json.loads(response["body"])) == (200, {"ready": True})


def test_env_vars_file_reaches_the_function(root: Path, tmp_path: Path) -> None:
    env_file = tmp_path / "env.json"
    env_file.write_text(json.dumps({"Predictdigitsmlp": {"AIAAS_MAX_PAYLOAD_BYTES": "100"}}))
    response = response_of(
        invoke(
            root,
            "Predictdigitsmlp",
            "-e",
            "events/predict_simple.json",
            "--env-vars",
            str(env_file),
        )
    )
    assert (response["statusCode"], json.loads(response["body"])) == (
        413,
        {"error": "request body is over the 100 byte limit"},
    )


@pytest.mark.parametrize("selector", ["1", "production"])
def test_a_selector_without_its_at_or_colon_is_refused_naming_the_variable(
    root: Path, tmp_path: Path, selector: str
) -> None:
    """docs/serve.md's own --env-vars form: `2` was glued to the model's name, and every request was a
    404 blaming the route ("this endpoint serves 'digits-mlp2'"), as `serve --selector 2` is
    not (tests/infra/test_serve_operator.py)."""
    env_file = tmp_path / "env.json"
    env_file.write_text(json.dumps({"Predictdigitsmlp": {"AIAAS_MODEL_SELECTOR": selector}}))
    argv = ("Predictdigitsmlp", "-e", "events/predict_simple.json", "--env-vars", str(env_file))
    result = invoke(root, *argv)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"aiaas invoke: error: AIAAS_MODEL_SELECTOR: {selector!r} is neither @ALIAS (e.g. "
        "@production) nor :VERSION (e.g. :3)\n"
    )
    env_file.write_text(json.dumps({"Predictdigitsmlp": {"AIAAS_MODEL_SELECTOR": f":{1}"}}))
    assert response_of(invoke(root, *argv))["statusCode"] == 200


def test_env_vars_inline_json_or_a_bad_file_is_one_line_error(root: Path, tmp_path: Path) -> None:
    """--env-vars takes a file, as sam local invoke's does; inline JSON was a traceback."""
    inline = '{"Predictdigitsmlp": {"AIAAS_MAX_PAYLOAD_BYTES": "100"}}'
    result = invoke(
        root, "Predictdigitsmlp", "-e", "events/predict_simple.json", "--env-vars", inline
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "no such file; it takes a JSON file (as sam local invoke does)" in result.stderr
    flat = tmp_path / "flat.json"
    flat.write_text('{"AIAAS_MAX_PAYLOAD_BYTES": "100"}')
    result = invoke(root, "Health", "-e", "events/health_live.json", "--env-vars", str(flat))
    assert result.returncode == 1 and "expected an object of objects" in result.stderr


def test_unknown_function_and_unreadable_event_exit_1(root: Path, tmp_path: Path) -> None:
    result = invoke(root, "Nope", "-e", "events/predict_simple.json")
    assert result.returncode == 1
    assert result.stderr.startswith("aiaas invoke: error: no function 'Nope' in ")
    assert "Predictdigitsmlp" in result.stderr and result.stdout == ""
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = invoke(root, "Health", "-e", str(bad))
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"aiaas invoke: error: event {bad} is not valid JSON")
    )


def test_the_golden_event_set_is_complete() -> None:
    names = sorted(p.stem for p in EVENTS.glob("*.json") if not p.name.startswith("batch_"))
    assert names == sorted(
        [
            "predict_simple",
            "predict_custom_domain",
            "predict_explain",
            "predict_version_simple",
            "predict_v2_infer_json",
            "predict_v2_infer_binary",
            "predict_v2_metadata",
            "predict_v2_ready",
            "health_live",
            "health_ready",
            "server_metadata",
            "drift_schedule",
            "shadow_logs",
        ]
    )


def test_the_drift_job_answers_its_scheduled_event(tmp_path: Path) -> None:
    from functions.runtime.store import LocalStore
    from tests.functions.test_drift_handler import serve_shifted

    serve_shifted(LocalStore(tmp_path / "store"), tmp_path, "1", 2.0)
    result = invoke(tmp_path, "DriftJob", "-e", str(EVENTS / "drift_schedule.json"))
    assert response_of(result) == {"versions": 1, "drifted": ["credit:1"]}
    emf = [json.loads(line) for line in result.stderr.splitlines() if '"_aws"' in line]
    assert [d["drifted"][0] for d in emf] == ["b"]  # then maybe the predictions


def test_local_golden_batch_events_score_the_golden_file(root: Path) -> None:
    """events/local/ name the local store's pseudo-bucket: they work after `make demo`."""
    local = ROOT / "events" / "local"
    data = (local / "golden.csv").read_bytes()
    key = "batch/digits-mlp/input/golden.csv"
    for name in ("batch_sqs.json", "batch_s3.json"):
        event = json.loads((local / name).read_text())
        body = event["Records"][0].get("body")
        s3 = (json.loads(body) if body else event)["Records"][0]["s3"]
        assert (s3["bucket"]["name"], s3["object"]["key"], s3["object"]["size"]) == (
            "aiaas-local", key, len(data)
        )  # fmt: skip
    target = root / "store" / key
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    assert response_of(invoke(root, "BatchFunction", "-e", str(local / "batch_sqs.json"))) == {
        "batchItemFailures": []
    }
    summary = json.loads(
        (root / "store/batch/digits-mlp/output/golden.csv.summary.json").read_text()
    )
    assert (summary["status"], summary["scored_rows"], summary["failed_rows"]) == (
        "succeeded",
        8,
        0,
    )
    direct = response_of(invoke(root, "BatchFunction", "-e", str(local / "batch_s3.json")))
    assert direct["results"][0]["status"] == "skipped"  # the same object: scored once


def test_a_failed_batch_message_says_why(root: Path) -> None:
    """`batchItemFailures` holds ids only; the reason is logged, one line per message."""
    result = invoke(root, "BatchFunction", "-e", str(EVENTS / "batch_sqs.json"))
    failed = json.loads(result.stdout)["batchItemFailures"]
    assert [f["itemIdentifier"] for f in failed] == ["059f36b4-87a3-44ab-83d2-661975830a7d"]
    assert (
        "SQS message 059f36b4-87a3-44ab-83d2-661975830a7d failed and returns to the queue: "
        "event for bucket 'aiaas-artifactsbucket-1a2b3c4d5e6f', but this function's store is in "
        "'aiaas-local'"
    ) in result.stderr


def test_golden_explain_event(root: Path) -> None:
    """events/predict_explain.json through `aiaas invoke`, once the model has a background."""
    from functions.runtime.explain.background import BACKGROUND_FILE, summarize

    path = root / "store/models/digits-mlp/versions/1" / BACKGROUND_FILE
    pixels = np.random.default_rng(0).random((30, 64)) * 16  # digits pixels are 0-16
    path.write_text(summarize(pixels, clusters=5).to_json())
    try:
        response = response_of(
            invoke(root, "Predictdigitsmlp", "-e", str(EVENTS / "predict_explain.json"))
        )
    finally:
        path.unlink()
    assert response["statusCode"] == 200, response["body"]
    doc = json.loads(response["body"])
    assert (doc["model"], doc["method"], len(doc["features"])) == ("digits-mlp", "kernel_shap", 64)
    row = doc["explanations"][0]
    gap = np.asarray(row["prediction"]) - np.asarray(row["base_value"])
    np.testing.assert_allclose(np.asarray(row["attributions"]).sum(axis=0), gap, atol=1e-5)


def test_invoke_shadow_function_on_the_golden_log_event(tmp_path: Path) -> None:
    """`aiaas invoke ShadowFunction -e events/shadow_logs.json`, as `sam local invoke` would."""
    from tests.functions.test_predict_shadow import registry_with

    registry_with(tmp_path, ("a", "b", "c"))  # the models the golden copies name
    result = invoke(tmp_path, "ShadowFunction", "-e", str(EVENTS / "shadow_logs.json"))
    assert response_of(result) == {
        "copies": 24, "replayed": 24, "failed": 0, "not_copies": 0, "dropped": 0, "repeated": 0
    }  # fmt: skip


def test_an_sqs_batch_whose_every_message_fails_is_one_line_not_a_traceback(root: Path) -> None:
    """Powertools raises when every message fails (Lambda then returns the whole batch to the
    queue): `aiaas invoke` says so in one line, after the log line with each message's reason."""
    result = invoke(root, "BatchFunction", "-e", str(EVENTS / "batch_eventbridge_sqs.json"))
    assert result.returncode == 1 and result.stdout == "", result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "event for bucket 'aiaas-51af3dc0-da77-11e4-872e-1234567db123'" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == (
        "aiaas invoke: error: BatchFunction failed the invocation: every message of the SQS "
        "batch failed (each one's reason is logged above), so Lambda returns them all to the "
        "queue"
    )


def test_a_predict_function_of_an_unpublished_model_says_to_publish_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """README's `aiaas invoke Predictdigitsmlp -e events/predict_simple.json` before digits-mlp
    is published: template.yaml names the function, so "no function in the stack" alone read
    as a broken stack; the message says a predict function comes with a published model."""
    from infra.cli.main import main
    from infra.local.functions import NATIVE_SETTINGS

    for name in NATIVE_SETTINGS:  # invoke exports them into os.environ: undone after the test
        monkeypatch.setenv(name, os.environ.get(name, "false"))
    store = tmp_path / "store"
    argv = ["--store", str(store), "invoke", "Predictdigitsmlp", "-e", str(EVENTS / "predict_simple.json")]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("aiaas invoke: error: no function 'Predictdigitsmlp' in the stack")
    assert f"serves each model published in the store ({store})" in err
    assert "aiaas train training/specs/digits-mlp.yaml --publish" in err


def test_invoke_health_of_an_unreachable_store_is_the_function_s_own_503(tmp_path: Path) -> None:
    """`invoke` listed the store's models for every function, so an unreachable store failed
    before the health function ran, with the listing's connection error instead of its 503."""
    env = {
        **os.environ,
        "AIAAS_STORE": "s3://nobucket/registry",
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",  # the discard port: nothing listens
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIAAS_CACHE_DIR": str(tmp_path / "cache"),
    }
    result = subprocess.run(
        [*aiaas_command(), "invoke", "Health", "-e", str(EVENTS / "health_ready.json")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    response = response_of(result)
    assert (response["statusCode"], json.loads(response["body"])) == (
        503,
        {"error": "the model store is not reachable", "ready": False},
    )
