"""template.yaml as CloudFormation, SAM and Lambda will see it, checked without an AWS account.

- cfn-lint is clean; `sam validate --lint` is clean when the SAM CLI is installed;
- the SAM transform (samtranslator, offline) turns the template, after the LanguageExtensions
  step, into the resources we mean: SnapStart or provisioned concurrency per model, arm64
  python3.12, every route behind IAM (or the JWT authorizer);
- every handler named imports, and every route is answered by its real function;
- least privilege and the bucket: tests/infra/test_template_iam.py;
- per-model settings that mix SnapStart with provisioned concurrency are rejected.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

from bench.models import publish_mlp
from functions.runtime.explain.background import BACKGROUND_FILE, summarize
from infra.local.gateway import Gateway, GatewayRequest, function_instances
from infra.model_settings import main as check_settings
from infra.model_settings import model_problems, template_problems
from infra.template import (
    DEFAULT_TEMPLATE,
    functions,
    load_template,
    parameter_defaults,
)
from tests.infra.language_extensions import expand

ROOT = DEFAULT_TEMPLATE.parent
MODELS = ["digits-mlp", "iris"]
WARM_IRIS = {
    "SnapStart": "None",
    "KeepWarm": ["ProvisionedConcurrencyConfig"],
    "ProvisionedConcurrency": 2,
}


class OfflinePolicies(ManagedPolicyLoader):
    """The template names no managed policy by name, so IAM is never asked."""

    def __init__(self) -> None:
        pass

    def load(self) -> dict[str, str]:
        return {}


def translated(**parameters: Any) -> dict[str, Any]:
    """The template after LanguageExtensions and the SAM transform, as `sam package` left it."""
    template = load_template()
    template["Mappings"]["ModelSettings"]["iris"] = dict(WARM_IRIS)
    template["Globals"]["Function"]["CodeUri"] = "s3://deploy-bucket/functions.zip"
    template["Resources"]["BatchStateMachine"]["Properties"]["DefinitionUri"] = (
        "s3://deploy-bucket/batch.asl.json"
    )
    values = {**parameter_defaults(template), "ModelNames": MODELS, **parameters}
    flat = {k: ",".join(v) if isinstance(v, list) else v for k, v in values.items()}
    return transform(expand(template, values), flat, OfflinePolicies())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def cloud() -> dict[str, Any]:
    return translated()["Resources"]  # type: ignore[no-any-return]


# ---- linters ------------------------------------------------------------------------------


def test_cfn_lint_is_clean() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(DEFAULT_TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, ""), done.stdout + done.stderr


def sam_cli() -> str | None:
    return (
        os.environ.get("AIAAS_SAM_CLI")
        or shutil.which("sam")
        or shutil.which("sam", path=str(Path(sys.executable).parent))
    )


@pytest.mark.skipif(
    sam_cli() is None,
    reason="the SAM CLI is not installed: it pins boto3/pydantic below this venv's, so it lives in "
    "its own venv (`make sam-validate` creates .venv-sam, or set AIAAS_SAM_CLI=/path/to/sam); cfn-lint and samtranslator still ran",
)
def test_sam_validate_lint_is_clean() -> None:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    done = subprocess.run(
        [str(sam_cli()), "validate", "--lint", "-t", str(DEFAULT_TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is a valid SAM Template" in done.stdout + done.stderr


# ---- the SAM transform, offline -----------------------------------------------------------


def of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in resources.items() if v["Type"] == kind}


def test_one_arm64_python312_function_per_model_plus_the_shared_ones(cloud: dict[str, Any]) -> None:
    lambdas = of_type(cloud, "AWS::Lambda::Function")
    assert set(lambdas) == {
        "Predictdigitsmlp",
        "Predictiris",
        "Health",
        "BatchFunction",
        "ControlPlane",
    }
    for fn in lambdas.values():
        props = fn["Properties"]
        assert (props["Runtime"], props["Architectures"], props.get("PackageType", "Zip")) == (
            "python3.12",
            ["arm64"],
            "Zip",
        )
    assert lambdas["Predictdigitsmlp"]["Properties"]["MemorySize"] == 1024


def test_snapstart_or_provisioned_concurrency_per_model(cloud: dict[str, Any]) -> None:
    lambdas = of_type(cloud, "AWS::Lambda::Function")
    aliases = of_type(cloud, "AWS::Lambda::Alias")
    assert lambdas["Predictdigitsmlp"]["Properties"]["SnapStart"] == {
        "ApplyOn": "PublishedVersions"
    }
    assert "ProvisionedConcurrencyConfig" not in aliases["PredictdigitsmlpAliaslive"]["Properties"]
    assert lambdas["Predictiris"]["Properties"]["SnapStart"] == {"ApplyOn": "None"}
    assert aliases["PredictirisAliaslive"]["Properties"]["ProvisionedConcurrencyConfig"] == {
        "ProvisionedConcurrentExecutions": 2
    }
    assert lambdas["ControlPlane"]["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}


def api_operations(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    body = resources["Api"]["Properties"]["Body"]
    return {f"{m.upper()} {p}": op for p, ops in body["paths"].items() for m, op in ops.items()}


def test_every_route_requires_iam_by_default(cloud: dict[str, Any]) -> None:
    operations = api_operations(cloud)
    assert len(operations) == 2 * 10 + 3 + 3
    assert {key: op["security"] for key, op in operations.items()} == {
        key: [{"AWS_IAM": []}] for key in operations
    }
    predict = operations["POST /models/iris/predict"]["x-amazon-apigateway-integration"]["uri"][
        "Fn::Sub"
    ]
    assert "${PredictirisAliaslive}" in predict  # the published, snapshotted or warm version


def test_jwt_mode_puts_the_jwt_authorizer_on_every_route() -> None:
    resources = translated(AuthMode="JWT", JwtIssuer="https://issuer.example", JwtAudience=["app"])[
        "Resources"
    ]
    securities = {str(op["security"]) for op in api_operations(resources).values()}
    assert securities == {str([{"JwtAuthorizer": []}])}


def test_jwt_mode_without_issuer_is_refused_by_a_rule() -> None:
    rule = load_template()["Rules"]["JwtNeedsIssuerAndAudience"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "AuthMode"}, "JWT"]}
    assert [a["AssertDescription"] for a in rule["Assertions"]] == [
        "AuthMode JWT needs JwtIssuer, the token issuer URL.",
        "AuthMode JWT needs JwtAudience, one or more accepted audiences.",
    ]


def test_training_runs_on_gpu_batch_that_scales_to_zero(cloud: dict[str, Any]) -> None:
    environment = cloud["TrainingComputeEnvironment"]
    compute = environment["Properties"]["ComputeResources"]
    assert environment["Condition"] == "TrainingEnabled"
    assert compute["MinvCpus"] == 0
    assert compute["Ec2Configuration"] == [{"ImageType": "ECS_AL2023_NVIDIA"}]
    assert all(
        t.startswith(("g5.", "g6."))
        for t in parameter_defaults(load_template())["TrainingInstanceTypes"]
    )
    container = cloud["TrainingJobDefinition"]["Properties"]["ContainerProperties"]
    assert {"Type": "GPU", "Value": "1"} in container["ResourceRequirements"]
    assert container["Image"] == {"Ref": "TrainingImageUri"}


def test_alarms_cover_5xx_latency_and_throttles(cloud: dict[str, Any]) -> None:
    alarms = of_type(cloud, "AWS::CloudWatch::Alarm")
    metrics = {
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms.values()
    }
    assert {
        ("AWS/ApiGateway", "5xx"),
        ("AWS/ApiGateway", "Latency"),
        ("AWS/Lambda", "Throttles"),
    } <= metrics
    throttled = {
        str(a["Properties"]["Dimensions"][0]["Value"])
        for a in alarms.values()
        if a["Properties"]["MetricName"] == "Throttles"
    }
    assert throttled == {
        "{'Fn::Sub': '${Predictdigitsmlp}'}",
        "{'Fn::Sub': '${Predictiris}'}",
        "{'Ref': 'ControlPlane'}",
        "{'Ref': 'BatchFunction'}",
    }


def test_outputs_name_the_api_bucket_and_queue() -> None:
    outputs = load_template()["Outputs"]
    assert {"ApiUrl", "ArtifactsBucketName", "BatchQueueUrl", "RegistryStore"} <= set(outputs)


# ---- handlers and routes, locally ---------------------------------------------------------


def test_every_handler_imports_and_is_callable(tmp_path: Path) -> None:
    from infra.local.functions import load_handler

    specs = functions(load_template())
    for spec in specs.values():
        env = {"AIAAS_STORE": str(tmp_path / "store"), "AIAAS_DISABLE_METRICS": "true"}
        if spec.handler.startswith("functions.predict."):
            continue  # loads its model at init: imported with a published model below
        assert callable(load_handler(spec.handler, env)), spec.handler


ROWS = (np.arange(2 * 64, dtype=np.float32).reshape(2, 64) % 17).tolist()
INFER = {"inputs": [{"name": "x", "shape": [2, 64], "datatype": "FP32", "data": ROWS}]}


def request_for(method: str, path: str) -> GatewayRequest:
    concrete = path.replace("{version}", "1").replace("{proxy+}", "models")
    body = b""
    if concrete.endswith("/predict"):
        body = orjson.dumps({"inputs": ROWS})
    elif concrete.endswith("/explain"):
        explain = INFER if concrete.startswith("/v2/") else {"inputs": ROWS}
        body = orjson.dumps({**explain, "parameters": {"samples": 64}})
    elif concrete.endswith("/infer"):
        body = orjson.dumps(INFER)
    verb = "GET" if method == "ANY" else method
    return GatewayRequest(verb, concrete, "", [("content-type", "application/json")], body)


def test_every_template_route_is_answered_by_its_function(tmp_path: Path) -> None:
    store = tmp_path / "store"
    publish_mlp(store, "digits-mlp")
    background = summarize(np.random.default_rng(0).random((40, 64)), clusters=4)
    (store / "models/digits-mlp/versions/1" / BACKGROUND_FILE).write_text(background.to_json())
    specs = functions(load_template(), {"ModelNames": ["digits-mlp"]})
    env = {
        "AIAAS_STORE": str(store),
        "AIAAS_DISABLE_METRICS": "true",
        "AIAAS_CACHE_DIR": str(tmp_path / "cache"),
    }
    gateway = Gateway(function_instances(specs, env))
    routes = [(s.logical_id, r) for s in specs.values() for r in s.routes]
    assert len(routes) == 10 + 3 + 3
    for logical_id, route in routes:
        response = gateway.handle(request_for(route.method, route.path))
        assert response.status == 200, (logical_id, route, response.body[:300])
        body = (
            orjson.loads(response.body)
            if "json" in dict(response.headers)["content-type"]
            else None
        )
        if route.path.endswith("/explain"):
            assert body["model" if "v2" not in route.path else "model_name"] == "digits-mlp"
        if route.path.endswith(("/predict", "/infer")):
            assert body["model_name" if "infer" in route.path else "model"] == "digits-mlp"
        if route.path == "/control/{proxy+}":
            assert body["models"][0]["name"] == "digits-mlp"


# ---- per-model settings -------------------------------------------------------------------


def test_shipped_settings_are_consistent(capsys: pytest.CaptureFixture[str]) -> None:
    assert template_problems(load_template()) == []
    assert check_settings(["--models", "digits-mlp,iris"]) == 0
    assert capsys.readouterr().out.endswith("model settings are consistent\n")


def test_snapstart_with_provisioned_concurrency_is_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    both = {**WARM_IRIS, "SnapStart": "PublishedVersions"}
    assert model_problems("iris", both) == [
        "Mappings.ModelSettings.iris: SnapStart and provisioned concurrency exclude each other; "
        "for provisioned concurrency set SnapStart: None, else drop KeepWarm"
    ]
    template = load_template()
    template["Mappings"]["ModelSettings"]["iris"] = both
    path = tmp_path / "template.yaml"
    path.write_text(
        DEFAULT_TEMPLATE.read_text().replace(
            "      SnapStart: PublishedVersions\n  AuthModes:",
            "      SnapStart: PublishedVersions\n      KeepWarm: [ProvisionedConcurrencyConfig]\n      ProvisionedConcurrency: 3\n  AuthModes:",
        )
    )
    assert check_settings(["--template", str(path)]) == 1
    assert (
        "digits-mlp: SnapStart and provisioned concurrency exclude each other"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (
            {"KeepWarm": ["ProvisionedConcurrencyConfig"], "SnapStart": "None"},
            "ProvisionedConcurrency: KeepWarm needs a count of at least 1, got None",
        ),
        (
            {"ProvisionedConcurrency": 2},
            "ProvisionedConcurrency: has no effect without KeepWarm: [ProvisionedConcurrencyConfig] (and SnapStart: None)",
        ),
        ({"SnapStart": "Yes"}, "SnapStart: 'Yes' is neither 'PublishedVersions' nor 'None'"),
        ({"MemorySize": 64}, "MemorySize: 64 is outside 128..10240"),
        (
            {"Memory": 512},
            "Memory: unknown setting; use one of ['KeepWarm', 'MemorySize', 'ProvisionedConcurrency', 'SnapStart', 'Timeout']",
        ),
    ],
)
def test_other_bad_settings_name_what_to_fix(settings: dict[str, Any], problem: str) -> None:
    assert model_problems("m", copy.deepcopy(settings)) == [f"Mappings.ModelSettings.m.{problem}"]
