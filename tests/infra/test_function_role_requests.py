"""Each function's policy in the template against the S3 requests it really makes.

The golden events (events/) drive the stack's functions one cold start at a time, as
`aiaas invoke` runs them, over moto's S3 server with its recorder on. Every request a function
sends must be allowed by that function's own statements together with the bucket policy, as
IAM would decide (tests/iam_policy.py; IAM itself cannot run here): a request the policy left
out is a 403 in AWS, often on a path no other check takes (a drift flush, a capture, a
rollback's history). The store holds what the events need: digits-mlp 1 to 4 (production
moved 1 -> 2, a card, a background and a drift baseline on 2, capture on), a batch input and
labelled data, and model m with a shadow for the shadow function's copies; the same moto
server answers the Step Functions and CloudWatch calls (a rollout started, checked, aborted),
and the control plane's other routes are driven by events made from a golden one."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.runtime.capture.setting import set_capture
from functions.runtime.drift import baseline as drift_baseline
from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.explain.background import BACKGROUND_FILE, summarize
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.s3store import S3Store
from tests.functions.test_predict_shadow import publish_linear
from tests.iam_policy import ACCOUNT, STACK, S3Request, decision, write
from tests.role_requests import (
    BUCKET,
    EVENTS,
    LABELS,
    RecordedStack,
    publish_digits,
    refused_by_run,
    statements,
)

# (function, event, what it must answer: a status code, or keys of a non-HTTP answer)
RUNS: list[tuple[str, str, Any]] = [
    *[
        ("Predictdigitsmlp", event, 200)
        for event in (
            "predict_simple",
            "predict_v2_infer_json",
            "predict_v2_infer_binary",
            "predict_v2_metadata",
            "predict_v2_ready",
            "predict_explain",
            "predict_version_simple",
        )
    ],
    *[("Health", event, 200) for event in ("health_live", "health_ready", "server_metadata")],
    ("BatchFunction", "batch_sqs", {"batchItemFailures": []}),
    ("BatchFunction", "batch_s3", "results"),
    ("ControlPlane", "control/models_list", 200),
    ("ControlPlane", "control/alias_get", 200),
    ("ControlPlane", "control/alias_promote", 201),
    ("ControlPlane", "control/version_card", 200),
    ("ControlPlane", "control/compare", 200),
    # production 2 -> 1 in steps, its state machine started (moto's Step Functions)
    ("ControlPlane", "control/rollout_start", 202),
    ("ControlPlane", "control/rollout_abort", 412),  # the golden ETag is not this rollout's
    ("RolloutFunction", "rollout_check", "state"),  # CloudWatch (moto's) has no answers yet
    ("RolloutFunction", "rollout_abort", "state"),  # the alias back on 2
    ("ControlPlane", "control/alias_rollback", 200),
    ("DriftJob", "drift_schedule", "versions"),
    ("ShadowFunction", "shadow_logs", "replayed"),
]
# The control plane's other routes, as events made from events/control/alias_get.json with
# another method, path and body: (method, path under /control/, JSON body, status)
CONTROL: list[tuple[str, str, Any, int]] = [
    ("PUT", "models/digits-mlp/capture", {"sample": 0.5}, 200),
    ("DELETE", "models/digits-mlp/capture", None, 200),
    ("PUT", "models/digits-mlp/aliases/production/shadow", {"version": "3", "sample": 0.1}, 200),
    ("DELETE", "models/digits-mlp/aliases/production/shadow", None, 200),
    ("DELETE", "models/digits-mlp/aliases/staging", None, 200),
    ("DELETE", "models/digits-mlp/versions/3", None, 200),
    ("POST", "batch/digits-mlp/jobs", {"source": "uploads/rows.csv"}, 202),
    ("PUT", "batch/digits-mlp/jobs/sent.csv", "golden.csv", 202),
    ("GET", "batch/digits-mlp/jobs", None, 200),
]


def control_event(work: Path, method: str, path: str, body: Any) -> Path:
    """An API Gateway v2 event of the ControlPlane route, as the golden ones are."""
    event = json.loads((EVENTS / "control" / "alias_get.json").read_text())
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/control/{path}"
    event["requestContext"]["http"]["method"] = method
    event["pathParameters"] = {"proxy": path}
    if body == "golden.csv":  # an upload: the file itself as the body
        data = (EVENTS / "local" / "golden.csv").read_bytes()
        event["body"], event["isBase64Encoded"] = base64.b64encode(data).decode(), True
        event["headers"]["content-type"] = "application/octet-stream"
    elif body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["content-type"] = "application/json"
    made = work / f"control-{method}-{path.replace('/', '-')}.json"
    made.write_text(json.dumps(event))
    return made


def populate(store: S3Store, work: Path) -> None:
    registry = Registry(store)
    (work / "card.md").write_text("# digits-mlp\n")
    versions = {"1": {"card/card.md": work / "card.md"}, "2": {}, "3": {}, "4": {}}
    publish_digits(registry, work, versions)  # 3: neither aliased nor latest: deletable
    registry.set_alias("digits-mlp", "production", "1", actor="ci")
    registry.set_alias("digits-mlp", "production", "2", actor="ci")
    train = np.random.default_rng(0).uniform(0, 16, size=(500, 64)).astype(np.float32)
    prefix = version_prefix("digits-mlp", "2")
    store.put_bytes(f"{prefix}/{BACKGROUND_FILE}", summarize(train).to_json().encode())
    shares = drift_baseline.label_shares(np.arange(500) % 10, LABELS)
    features = tuple(f"x_{i}" for i in range(64))
    base = drift_baseline.build(train, features, shares).to_json().encode()
    store.put_bytes(f"{prefix}/{BASELINE_FILE}", base)
    set_capture(registry, "digits-mlp", sample=1.0, actor="ci")
    golden = (EVENTS / "local" / "golden.csv").read_bytes()
    store.put_bytes("batch/digits-mlp/input/scores for März.csv", golden)
    store.put_bytes("batch/digits-mlp/input/held.csv", golden.replace(b"id,digit,", b"id,y,"))
    store.put_bytes("uploads/rows.csv", golden)
    for version in ("1", "2"):
        publish_linear(registry, work, "m", version, seed=int(version), labels=("a", "b", "c"))
    registry.set_alias("m", "production", "1", actor="ci")
    registry.set_shadow("m", "production", "2", 1.0, actor="ci")


@pytest.fixture(scope="module")
def requests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[S3Request]]]:
    """Each run's requests, by "function event"."""
    work = tmp_path_factory.mktemp("function-requests")
    stack = RecordedStack(work).start()
    try:
        populate(S3Store(BUCKET, "registry", client=stack.s3), work)
        extra = {"AIAAS_ROLLOUT_STATE_MACHINE": stack.state_machine("rollout")}
        for action in ("check", "abort"):  # what the state machine's tasks send
            task = {"aiaas_rollout": action, "model": "digits-mlp", "alias": "production"}
            (work / f"rollout_{action}.json").write_text(json.dumps(task))
        runs = [
            (f, work / f"{e}.json" if f == "RolloutFunction" else EVENTS / f"{e}.json", e, x)
            for f, e, x in RUNS
        ]
        runs += [
            ("ControlPlane", control_event(work, method, path, body), f"{method} {path}", code)
            for method, path, body, code in CONTROL
        ]
        found = {}
        for function, event_file, event, expected in runs:
            answer = stack.invoke(function, event_file, extra)
            if isinstance(expected, int):
                assert answer["statusCode"] == expected, (event, answer.get("body"))
            elif isinstance(expected, dict):
                assert answer == expected, event
            else:
                assert answer[expected], (event, answer)
            found[f"{function} {event}"] = stack.taken()
        yield found
    finally:
        stack.stop()


def test_every_request_of_every_function_is_allowed_by_its_own_policy(
    requests: dict[str, list[S3Request]],
) -> None:
    assert refused_by_run(requests) == []


def test_the_runs_took_the_paths_that_write(requests: dict[str, list[S3Request]]) -> None:
    """What the check covered: each function's writes, not only its reads."""

    def writes(function: str) -> set[str]:
        return {
            r.resource.split(f"{BUCKET}/registry/", 1)[1].split("/", 1)[0]
            + ("/aliases" if "/aliases/" in r.resource else "")
            for run, made in requests.items()
            if run.startswith(f"{function} ")
            for r in made
            if r.action == "s3:PutObject"
        }

    assert {"monitoring", "capture"} <= writes("Predictdigitsmlp")
    assert writes("BatchFunction") == {"batch"}
    assert "models/aliases" in writes("ControlPlane")
    deleted = requests["ControlPlane DELETE models/digits-mlp/versions/3"]
    assert {r.resource.rsplit("/", 1)[1] for r in deleted if r.action == "s3:DeleteObject"} == {
        "manifest.json",
        "model.onnx",
        ".number-3",  # the claim on its number (publishing.claim_number): gone with it
    }
    assert any(
        "(CopyObject)" in r.call for r in requests["ControlPlane POST batch/digits-mlp/jobs"]
    )
    started = requests["ControlPlane control/rollout_start"]
    assert [r.resource for r in started if r.action == "states:StartExecution"] == [
        f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:{STACK}-rollout"
    ]
    checked = requests["RolloutFunction rollout_check"]
    assert [r.action for r in checked if not r.action.startswith("s3:")] == [
        "cloudwatch:GetMetricData"
    ]
    assert "models/aliases" in writes("RolloutFunction")  # the abort moved production back
    assert [run for run, made in requests.items() if not made] == [
        "Health health_live",
        "Health server_metadata",
    ]


MODEL = "registry/models/x"


@pytest.mark.parametrize(
    ("role", "key", "headers", "expected"),
    [
        # IAM's `*` matches '/': the grants to write aliases/*, rollouts/*, deleted_aliases/*
        # and capture.json also named these keys inside a version folder, and allowed them
        ("ControlPlane", "versions/aliases/manifest.json", {}, "deny"),
        ("ControlPlane", "versions/aliases/model.onnx", {}, "deny"),
        ("ControlPlane", "versions/rollouts/manifest.json", {}, "deny"),
        ("ControlPlane", "versions/deleted_aliases/manifest.json", {}, "deny"),
        ("ControlPlane", "versions/3/capture.json", {}, "deny"),
        ("ControlPlane", "versions/3/aliases/weights.bin", {}, "deny"),
        ("RolloutFunction", "versions/aliases/manifest.json", {}, "deny"),
        ("RolloutFunction", "versions/rollouts/model.onnx", {}, "deny"),
        ("RolloutFunction", "versions/rollouts/manifest.json", {"if_none_match": "*"}, "deny"),
        # what they are for still passes: the manifest put back (create-only), aliases moved
        ("ControlPlane", "versions/3/manifest.json", {"if_none_match": "*"}, "allow"),
        ("ControlPlane", "versions/3/manifest.json", {}, "deny"),
        ("ControlPlane", "aliases/production.json", {}, "allow"),
        ("ControlPlane", "deleted_aliases/staging.json", {}, "allow"),
        ("RolloutFunction", "aliases/production.json", {"if_match": '"e"'}, "allow"),
        ("RolloutFunction", "rollouts/production.json", {}, "allow"),
    ],
)
def test_no_function_replaces_a_version_s_file(
    role: str, key: str, headers: dict[str, str], expected: str
) -> None:
    """A version's files are write-once for the functions (README): the control plane may only
    put a deleted manifest back, create-only, and the rollout function writes none."""
    request = write(BUCKET, f"{MODEL}/{key}", **headers)
    assert decision(request, statements(role), BUCKET) == expected
