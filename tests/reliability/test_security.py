"""Security: the token guards every route, secrets and bodies stay out of the logs, names are
checked at every entry, payload limits apply before any parsing.

The template's least privilege (no wildcard actions for the predict functions, each reads only
its own model), public access block and TLS-only bucket policy are checked in
tests/infra/test_template_iam.py (`test_a_predict_function_reads_only_its_own_model`,
`test_bucket_is_private_versioned_encrypted_and_tls_only` and their neighbours).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from functions.predict.service import service_from_env
from functions.runtime.batch.layout import input_key, parse_input_key
from functions.runtime.errors import AiaasError
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main as aiaas
from tests import onnx_factory
from tests.functions.test_predict_events import (
    MODEL,
    body_of,
    digits_service,
    http_event,
    publish_digits,
)
from tests.infra.test_serve import ServeProcess, start_serve

TOKEN = "tok-7Hq2-never-in-logs"
WRONG_TOKEN = "tok-wrong-9Zx1-never-in-logs"
BODY_SECRET = "pw-4Kd8-never-in-logs"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROW = [0.5] * 64


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """Token on, logging at Powertools' default level (INFO), plus a model that cannot load."""
    root = tmp_path_factory.mktemp("security")
    store, _ = publish_digits(root)
    path = onnx_factory.linear_classifier(root / "broken.onnx")
    Registry(LocalStore(store)).publish(onnx_factory.manifest_for(path, "broken", "1"), path)
    (store / "models" / "broken" / "versions" / "1" / "model.onnx").write_bytes(b"tampered")
    env = {"AIAAS_API_TOKEN": TOKEN, "POWERTOOLS_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
    yield from start_serve(store, env=env, headers=AUTH)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
        ("GET", "/control/models"),
        ("PUT", f"/control/models/{MODEL}/aliases/production"),
        ("PUT", f"/control/batch/{MODEL}/jobs/a.csv"),
        ("POST", f"/v2/models/{MODEL}/infer"),
        ("GET", f"/v2/models/{MODEL}/versions/1/ready"),
        ("GET", "/v2"),
    ],
)
def test_every_route_kind_needs_the_token(served: ServeProcess, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": f"Bearer {WRONG_TOKEN}"}):
        answer = httpx.request(method, served.base + path, headers=headers, content=b"{}")
        assert (answer.status_code, answer.json()) == (
            401,
            {"error": "missing or invalid bearer token"},
        )


def secret_carrying_requests(base: str) -> None:
    """Good and bad requests, each with the token and a secret in its body."""
    secret_row = {"inputs": [ROW], "note": BODY_SECRET}
    with httpx.Client(base_url=base, headers=AUTH, timeout=30) as client:
        client.post(f"/models/{MODEL}/predict", json={"inputs": [ROW]})  # 200
        client.post(f"/models/{MODEL}/predict", json=secret_row)  # 400: unknown key
        client.post(f"/models/{MODEL}/predict", content=f"{{{BODY_SECRET}".encode())  # bad JSON
        client.post(f"/models/{MODEL}/predict", json={"inputs": [[BODY_SECRET] * 64]})  # 422
        client.post(f"/v2/models/{MODEL}/infer", json={"inputs": [], "id": BODY_SECRET})
        client.post("/models/broken/predict", json=secret_row)  # 503: logged as an error
        client.put(f"/control/models/{MODEL}/aliases/production", json={"version": BODY_SECRET})
        client.put(f"/control/models/{MODEL}/aliases/x", content=f"{{{BODY_SECRET}")
        csv = f"x_{0}\n{BODY_SECRET}\n".encode()
        client.put(f"/control/batch/{MODEL}/jobs/secret.csv", content=csv)  # scored, 1 bad row
    httpx.get(f"{base}/v2/health/live", headers={"Authorization": f"Bearer {WRONG_TOKEN}"})


def scored(base: str, file: str, timeout: float = 60) -> None:
    """Until the batch job of `file` is no longer pending (a fixed 1 s let a loaded machine
    read the log before the job had logged anything, and pass without checking its lines)."""
    deadline = time.monotonic() + timeout
    while (status := httpx.get(f"{base}/control/batch/{MODEL}/jobs/{file}", headers=AUTH).json())[
        "status"
    ] == "pending":
        assert time.monotonic() < deadline, f"{file} not scored within {timeout} s"
        time.sleep(0.05)
    assert status["status"] in ("succeeded", "failed"), status


def test_no_token_or_request_body_reaches_the_logs(served: ServeProcess) -> None:
    secret_carrying_requests(served.base)
    scored(served.base, "secret.csv")  # the uploaded job is scored on a thread: its lines too
    log = Path(served.log).read_text(errors="replace")
    assert "request failed: broken:1" in log  # the log is captured, and errors reach it
    for secret in (TOKEN, WRONG_TOKEN, BODY_SECRET, "Authorization", "authorization"):
        assert secret not in log, f"{secret!r} in the log: {log[-3000:]}"


EVIL_NAMES = ["../etc", "..", "a/b", "%2e%2e", ".hidden", "", "x" * 65, "a\x00b", "-x", "a b"]


def entry_points(store: LocalStore, workdir: Path) -> dict[str, Callable[[str], Any]]:
    """Every place a model, version or alias name comes in from outside."""
    registry = Registry(store)
    cli = ["--store", str(store.root)]
    return {
        "registry.versions": registry.versions,
        "registry.manifest(name)": lambda n: registry.manifest(n, "1"),
        "registry.manifest(version)": lambda n: registry.manifest(MODEL, n),
        "registry.resolve": registry.resolve,
        "registry.set_alias(alias)": lambda n: registry.set_alias(MODEL, n, "1"),
        "registry.set_alias(version)": lambda n: registry.set_alias(MODEL, "production", n),
        "batch input_key": lambda n: input_key(n, "x.csv"),
        "predict AIAAS_MODEL": lambda n: service_from_env(
            {"AIAAS_MODEL": n, "AIAAS_STORE": str(store.root)}
        ),
        "predict AIAAS_MODEL_SELECTOR": lambda n: service_from_env(
            {"AIAAS_MODEL": MODEL, "AIAAS_MODEL_SELECTOR": f"@{n}", "AIAAS_STORE": str(store.root)}
        ),
        "aiaas versions": lambda n: aiaas([*cli, "versions", n]),
        "aiaas promote": lambda n: aiaas([*cli, "promote", MODEL, n]),
        "aiaas show": lambda n: aiaas([*cli, "show", f"{MODEL}:{n}"]),
    }


def test_names_are_validated_at_every_entry(tmp_path: Path) -> None:
    store_dir, _ = publish_digits(tmp_path)
    store = LocalStore(store_dir)
    before = sorted(p for p in store_dir.rglob("*"))
    for entry, call in entry_points(store, tmp_path).items():
        for name in EVIL_NAMES:
            if (entry, name) == ("predict AIAAS_MODEL", ""):
                continue  # unset rather than invalid: a 503 at init (test_predict_errors.py)
            try:
                result = call(name)
            except AiaasError as exc:
                assert exc.status == 400, (entry, name, exc.message)
                said = ("invalid", "reference", "is neither @ALIAS")  # the last: a selector's
                assert any(words in exc.message for words in said), exc.message
            except SystemExit as exc:  # argparse: '-x' reads as an unknown option
                assert exc.code == 2, (entry, name)
            else:
                assert result == 1, (entry, name, result)  # the CLI: exit code 1, nothing done
    for name in EVIL_NAMES:  # batch keys from S3 events: not an input, or refused
        try:
            assert parse_input_key(f"batch/{name}/input/x.csv") is None, name
        except AiaasError as exc:
            assert exc.status == 400
    assert sorted(p for p in store_dir.rglob("*")) == before  # nothing written anywhere


@pytest.mark.parametrize(
    ("body", "headers", "b64"),
    [
        ("{" * 3000, {}, False),  # not JSON: refused for its size, never parsed
        ("!" * 4000, {}, True),  # not base64: refused before decoding
        ("x" * 3000, {"inference-header-content-length": "999999"}, False),
    ],
    ids=["json", "base64", "binary-header"],
)
def test_payload_limit_applies_before_any_parsing(
    tmp_path: Path, body: str, headers: dict[str, str], b64: bool
) -> None:
    publish_digits(tmp_path)
    service = digits_service(tmp_path, AIAAS_MAX_PAYLOAD_BYTES="2048")
    path = f"/v2/models/{MODEL}/infer" if headers else f"/models/{MODEL}/predict"
    event = http_event("POST", path, headers=headers)
    event.update(body=body, isBase64Encoded=b64)
    response = service.handle(event)
    assert (response["statusCode"], body_of(response)) == (
        413,
        {"error": "request body is over the 2048 byte limit"},
    )
    ok = http_event(
        "POST", f"/models/{MODEL}/predict", base64.b64encode(json.dumps({"inputs": [ROW]}).encode())
    )
    ok["isBase64Encoded"] = True
    assert service.handle(ok)["statusCode"] == 200  # under the limit, the same service answers


@pytest.mark.parametrize(
    ("env", "args"),
    [
        ({"AIAAS_API_TOKEN": ""}, ()),  # `export AIAAS_API_TOKEN=$(cat missing-file)`
        ({"AIAAS_API_TOKEN": "   "}, ()),
        ({"AIAAS_API_TOKEN": " tok-with-space "}, ()),  # a presented token is stripped: never equal
        ({}, ("--token", "")),
    ],
    ids=["empty", "blank", "padded", "empty-flag"],
)
def test_a_set_but_unusable_token_refuses_to_start(
    tmp_path: Path, env: dict[str, str], args: tuple[str, ...]
) -> None:
    """Set but empty served every route open; blank or padded locked every caller out while
    saying "bearer token required". Either way the operator meant a token: say so and stop."""
    store, _ = publish_digits(tmp_path)
    server = ServeProcess(store, *args, env=env)
    try:
        code = server.process.wait(timeout=60)
    finally:
        server.stop()
    assert code == 1, server.output()
    assert (
        "aiaas serve: error: the API token is empty or has spaces around it; set "
        "AIAAS_API_TOKEN (or --token) to the token callers send, or unset it to serve "
        "without auth" in server.output()
    )
    assert "http://" not in server.output()  # nothing was served


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        (f"/control/batch/{MODEL}/jobs", "source", "uploads//x.csv"),  # was a 500
        (f"/control/batch/{MODEL}/jobs", "source", "uploads/./x.csv"),  # was a 500
        (f"/control/batch/{MODEL}/jobs", "source", "uploads/../uploads/x.csv"),  # was a 500
        (f"/control/batch/{MODEL}/jobs", "source", f"uploads/{'y' * 300}.csv"),
        (f"/control/models/{MODEL}/compare", "data", f"batch/{MODEL}/input/a\x00b.csv"),  # 500 text
        (f"/control/models/{MODEL}/compare", "data", f"batch/{MODEL}/input/{'y' * 300}.csv"),  # 503
        (f"/control/models/{MODEL}/compare", "data", f"batch/{MODEL}/input/a\nb.csv"),
    ],
    ids=["empty-part", "dot-part", "dotdot-part", "long-part", "nul", "long-data", "newline"],
)
def test_store_keys_in_control_bodies_are_checked(
    served: ServeProcess, path: str, field: str, value: str
) -> None:
    """A key a caller names whole is a 400 naming the rule, never a 500 or 503."""
    body = {field: value} if field == "source" else {"a": "1", "b": "1", field: value}
    answer = httpx.post(served.base + path, json=body, headers=AUTH, timeout=30)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"].startswith(f"invalid {field} "), answer.text
    assert "a store key of '/'-separated parts of 1-255 characters" in answer.json()["error"]
