"""The stack's functions run against moto's server with its recorder on, and what each sent,
for checking against the template's policies (tests/iam_policy.py). Used by
tests/infra/test_function_role_requests.py and test_batch_role_requests.py."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3

from bench.models import mlp_onnx
from functions.runtime.introspect import read_signature
from functions.runtime.manifest import ModelManifest, Postprocessing
from functions.runtime.registry import Registry
from infra.template import load_template, served_resources
from tests.iam_policy import ACCOUNT, STACK, S3Request, decision, recorded, s3_requests
from tests.s3server import MotoServer

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "events"
BUCKET = "aiaas-artifactsbucket-1a2b3c4d5e6f"  # the golden S3 and SQS events' bucket
MODELS = "digits-mlp,m"
LABELS = tuple(str(i) for i in range(10))


def publish_digits(
    registry: Registry, work: Path, versions: Mapping[str, Mapping[str, Path]]
) -> None:
    """digits-mlp (the MLP the golden events call, 64 -> 10) as each version, with its files."""
    path = mlp_onnx(work / "mlp.onnx")
    sig = read_signature(path)
    for version, files in versions.items():
        manifest = ModelManifest(
            name="digits-mlp",
            version=version,
            task="classification",
            inputs=sig.inputs,
            outputs=sig.outputs,
            file=sig.file,
            labels=LABELS,
            postprocessing=Postprocessing(scores_output=sig.outputs[0].name),
        )
        registry.publish(manifest, path, files)


class RecordedStack:
    """moto on loopback answering S3, Step Functions and CloudWatch, recording each request;
    `invoke` runs one function of the stack on one event, cold, as `aiaas invoke` does."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.recording = work / "requests.jsonl"
        self.server = MotoServer(
            env={"MOTO_ENABLE_RECORDING": "True", "MOTO_RECORDER_FILEPATH": str(self.recording)}
        )
        self._forks: subprocess.Popen[str] | None = None

    def start(self) -> RecordedStack:
        self.server.start(self.work / "moto.log")
        self.s3 = boto3.client("s3", endpoint_url=self.server.endpoint)
        self.s3.create_bucket(Bucket=BUCKET)
        self.recording.write_text("")  # the set-up's requests are no role's
        return self

    def stop(self) -> None:
        if self._forks is not None:
            assert self._forks.stdin is not None
            self._forks.stdin.close()  # it ends at the end of its input
            try:
                self._forks.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._forks.kill()
                self._forks.wait()
            if self._forks.stdout is not None:
                self._forks.stdout.close()
            self._forks = None
        self.server.stop()

    def state_machine(self, name: str) -> str:
        """A state machine named as the template names it (`<stack>-<name>`): its ARN."""
        sfn = boto3.client("stepfunctions", endpoint_url=self.server.endpoint)
        return str(
            sfn.create_state_machine(
                name=f"{STACK}-{name}",
                definition=json.dumps(
                    {"StartAt": "S", "States": {"S": {"Type": "Pass", "End": True}}}
                ),
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}",
            )["stateMachineArn"]
        )

    def taken(self) -> list[S3Request]:
        """What was sent since the last call, as IAM authorizes it."""
        found = [
            r
            for entry in recorded(self.recording)
            if "/moto-api/" not in entry["url"]  # the readiness probe of MotoServer
            for r in s3_requests(entry)
        ]
        self.recording.write_text("")
        return found

    def invoke(self, function: str, event: Path, env: dict[str, str] | None = None) -> Any:
        """The function's answer to `event`; the recording holds only what it sent."""
        self.recording.write_text("")
        argv = [function, str(event), MODELS, json.dumps(env or {})]
        out, err = self.work / "invoke.out", self.work / "invoke.err"
        request = {"argv": argv, "out": str(out), "err": str(err)}
        request["env"] = {**self._env(), "AIAAS_CACHE_DIR": str(self.work / "cache" / function)}
        runner = self._runner()
        assert runner.stdin is not None and runner.stdout is not None
        runner.stdin.write(json.dumps(request) + "\n")
        runner.stdin.flush()
        ready, _, _ = select.select([runner.stdout], [], [], 120)
        assert ready, f"{function} {event.name}: no answer in 120 s"
        answer = json.loads(runner.stdout.readline())
        assert answer["rc"] == 0, err.read_text()[-3000:]
        return json.loads(out.read_text())

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "AWS_ENDPOINT_URL": self.server.endpoint,  # S3, Step Functions, CloudWatch
            "AWS_ENDPOINT_URL_S3": self.server.endpoint,
            "AIAAS_STORE": f"s3://{BUCKET}/registry",
            "PYTHONPATH": str(REPO),
        }

    def _runner(self) -> subprocess.Popen[str]:
        """`python -m tests.invoke_function --serve`, started on the first call: each call a
        cold start of its function in a process forked from it, without a new interpreter's
        imports of numpy, boto3 and FastAPI (~1 CPU-s a call)."""
        if self._forks is None:
            self._forks = subprocess.Popen(
                [sys.executable, "-m", "tests.invoke_function", "--serve"],
                env=self._env(),
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        return self._forks


def statements(role: str) -> list[dict[str, Any]]:
    """A function's (or state machine's) own policy statements and the bucket policy's."""
    resources = served_resources(load_template(), MODELS.split(","))
    own = [  # a SAM function's statements, or an IAM role's inline policies' (SAM's policy
        # templates, such as LambdaInvokePolicy, hold none of either)
        s
        for policy in resources[role]["Properties"].get("Policies", [])
        if isinstance(policy, dict)
        for s in policy.get("PolicyDocument", policy).get("Statement", [])
    ]
    bucket = resources["ArtifactsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    return [*own, *bucket]


def refused(role: str, made: list[S3Request]) -> list[str]:
    """Each request `role` may not make, with its condition keys and the decision."""
    found = statements(role)
    return [
        f"{role}: {r.call} {dict(r.context)} -> {decision(r, found, BUCKET)}"
        for r in made
        if decision(r, found, BUCKET) != "allow"
    ]


def refused_by_run(runs: Mapping[str, list[S3Request]]) -> list[str]:
    """`refused` of each run's requests, the role being the run's first word ("ControlPlane
    DELETE ...", "BatchFunction plan")."""
    return [line for run, made in runs.items() for line in refused(run.split()[0], made)]
