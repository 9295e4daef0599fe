"""template.yaml as CloudFormation, SAM and Lambda will see it, checked without an AWS account.

- cfn-lint is clean; `sam validate` and `sam validate --lint` are clean;
- the SAM transform (samtranslator, offline) of the template as `sam build` and `sam package`
  left it (tests/infra/conftest.py) gives the resources we mean: SnapStart or provisioned
  concurrency per model, arm64 python3.12, every route behind IAM (or the JWT authorizer);
- every handler named imports, and every route is answered by its real function;
- the per-model block and its settings: tests/infra/test_template_models.py;
- least privilege and the bucket: tests/infra/test_template_iam.py; the deploy itself:
  tests/infra/test_deploy.py.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

from infra.model_resources import model_resources
from infra.template import (
    DEFAULT_TEMPLATE,
    load_template,
    parameter_defaults,
)
from tests.infra.conftest import Packaged
from tests.infra.sam_cli import SKIP_REASON, Sam, sam_cli

ROOT = DEFAULT_TEMPLATE.parent
WARM_IRIS = {"ProvisionedConcurrency": 2, "MemorySize": 2048}


class OfflinePolicies(ManagedPolicyLoader):
    """The template names no managed policy by name, so IAM is never asked."""

    def __init__(self) -> None:
        pass

    def load(self) -> dict[str, str]:
        return {}


def sam_transform(template: dict[str, Any], **parameters: Any) -> dict[str, Any]:
    """What the AWS::Serverless transform makes of `template`, offline."""
    values = {**parameter_defaults(template), **parameters}
    flat = {k: ",".join(v) if isinstance(v, list) else v for k, v in values.items()}
    return transform(template, flat, OfflinePolicies())  # type: ignore[no-any-return]


def with_iris(packaged: dict[str, Any]) -> dict[str, Any]:
    """The packaged template plus a second model, as `infra.model_resources --write` adds it.

    Every function ships the same bundle (one `sam build` group: same CodeUri and settings),
    so iris's function takes the code location `sam package` gave digits-mlp's.
    """
    template = copy.deepcopy(packaged)
    iris = model_resources("iris", WARM_IRIS)
    iris["Predictiris"]["Properties"]["CodeUri"] = template["Resources"]["Predictdigitsmlp"][
        "Properties"
    ]["CodeUri"]
    template["Resources"].update(iris)
    return template


@pytest.fixture(scope="module")
def cloud(packaged: Packaged) -> dict[str, Any]:
    return sam_transform(with_iris(packaged.template()))["Resources"]  # type: ignore[no-any-return]


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


@pytest.mark.skipif(sam_cli() is None, reason=SKIP_REASON)
@pytest.mark.parametrize("lint", [False, True], ids=["sam_validate", "sam_validate_lint"])
def test_sam_validate_is_clean(lint: bool) -> None:
    output = Sam().run("validate", *(["--lint"] if lint else []), timeout=240)
    assert "is a valid SAM Template" in output


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
        "DriftJob",
        "RolloutFunction",
        "ShadowFunction",
    }
    for fn in lambdas.values():
        props = fn["Properties"]
        assert (props["Runtime"], props["Architectures"], props.get("PackageType", "Zip")) == (
            "python3.12",
            ["arm64"],
            "Zip",
        )
    assert lambdas["Predictdigitsmlp"]["Properties"]["MemorySize"] == 1024
    assert lambdas["Predictiris"]["Properties"]["MemorySize"] == 2048
    codes = {str(fn["Properties"]["Code"]) for fn in lambdas.values()}
    assert len(codes) == 1  # one bundle, uploaded once


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
    # 12 routes per model (2 here), health, /docs and /openapi.json, control (one a method)
    assert len(operations) == 2 * 12 + 3 + 2 + 6
    assert {key: op["security"] for key, op in operations.items()} == {
        key: [{"AWS_IAM": []}] for key in operations
    }
    predict = operations["POST /models/iris/predict"]["x-amazon-apigateway-integration"]["uri"][
        "Fn::Sub"
    ]
    assert "${PredictirisAliaslive}" in predict  # the published, snapshotted or warm version


def test_the_jwt_authorizer_guards_every_route_once_chosen(packaged: Packaged) -> None:
    # docs/deploy.md section 5 ("JWT."): the one line a user changes.
    template = packaged.template()
    template["Resources"]["Api"]["Properties"]["Auth"]["DefaultAuthorizer"] = "JwtAuthorizer"
    resources = sam_transform(template, UserPool="Create")["Resources"]
    securities = {str(op["security"]) for op in api_operations(resources).values()}
    assert securities == {str([{"JwtAuthorizer": []}])}
    jwt = resources["Api"]["Properties"]["Body"]["components"]["securitySchemes"]["JwtAuthorizer"]
    issuer = jwt["x-amazon-apigateway-authorizer"]["jwtConfiguration"]["issuer"]
    assert issuer["Fn::If"][0] == "CreatesUserPool"  # the stack's pool when it makes one


def test_a_jwt_issuer_without_audience_is_refused_by_a_rule() -> None:
    rule = load_template()["Rules"]["JwtIssuerNeedsAudience"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "JwtIssuer"}, ""]}]}
    assert [a["AssertDescription"] for a in rule["Assertions"]] == [
        "JwtIssuer needs JwtAudience, one or more accepted audiences."
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
    assert container["Image"] == {
        "Fn::Sub": "${TrainingRepository.RepositoryUri}:${TrainingImageTag}"
    }
    build = cloud["TrainingImageBuild"]["Properties"]
    assert build["Source"]["Location"] == {
        "Fn::Sub": "${ArtifactsBucket}/build/training-source.zip"
    }
    assert "docker build -f training/Dockerfile" in build["Source"]["BuildSpec"]
    assert cloud["TrainingRepository"]["Condition"] == "TrainingEnabled"


def test_alarms_notify_the_stack_s_topic(cloud: dict[str, Any]) -> None:
    alarms = of_type(cloud, "AWS::CloudWatch::Alarm")
    assert {str(a["Properties"]["AlarmActions"]) for a in alarms.values()} == {
        str([{"Ref": "AlarmTopic"}])
    }
    subscription = cloud["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}


def test_batch_concurrency_is_capped(cloud: dict[str, Any]) -> None:
    batch = cloud["BatchFunction"]["Properties"]
    assert batch["ReservedConcurrentExecutions"] == {
        "Fn::If": [
            "ReservesBatchConcurrency",
            {"Ref": "BatchReservedConcurrency"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    (mapping,) = of_type(cloud, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["ScalingConfig"] == {
        "MaximumConcurrency": {"Ref": "BatchQueueConcurrency"}
    }


def test_api_logs_throttles_and_cors(cloud: dict[str, Any]) -> None:
    (stage,) = of_type(cloud, "AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]}
    logged = orjson.loads(props["AccessLogSettings"]["Format"])
    # The functions log the API Gateway request id as their correlation id: the join key.
    assert logged["requestId"] == "$context.requestId"
    assert {"status", "routeKey", "caller", "subject", "integrationError"} <= set(logged)
    assert props["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
    }


def test_every_function_logs_to_a_group_with_retention(cloud: dict[str, Any]) -> None:
    for logical, fn in of_type(cloud, "AWS::Lambda::Function").items():
        group = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert cloud[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, logical


def test_training_jobs_log_to_a_group_with_retention(cloud: dict[str, Any]) -> None:
    # Not Batch's default /aws/batch/job, which Batch creates with no retention (kept forever).
    container = cloud["TrainingJobDefinition"]["Properties"]["ContainerProperties"]
    logs = container["LogConfiguration"]
    assert logs["LogDriver"] == "awslogs"
    group = logs["Options"]["awslogs-group"]["Ref"]
    assert cloud[group]["Condition"] == "TrainingEnabled"
    assert cloud[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_alarms_cover_5xx_latency_and_throttles(cloud: dict[str, Any]) -> None:
    alarms = of_type(cloud, "AWS::CloudWatch::Alarm")
    metrics = {
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"])
        for a in alarms.values()
        if "MetricName" in a["Properties"]
    }
    assert {
        ("AWS/ApiGateway", "5xx"),
        ("AWS/ApiGateway", "Latency"),
        ("AWS/Lambda", "Throttles"),
    } <= metrics
    throttled = {
        str(a["Properties"]["Dimensions"][0]["Value"])
        for a in alarms.values()
        if a["Properties"].get("MetricName") == "Throttles"
    }
    assert throttled == {
        "{'Ref': 'Predictdigitsmlp'}",
        "{'Ref': 'Predictiris'}",
        "{'Ref': 'ControlPlane'}",
        "{'Ref': 'BatchFunction'}",
    }
    failing = {
        str(a["Properties"]["Dimensions"][0]["Value"])
        for a in alarms.values()
        if a["Properties"].get("MetricName") == "Errors"
    }
    assert failing == {
        "{'Ref': 'Predictdigitsmlp'}",
        "{'Ref': 'Predictiris'}",
        "{'Ref': 'ControlPlane'}",
        "{'Ref': 'BatchFunction'}",
        "{'Ref': 'DriftJob'}",
        "{'Ref': 'ShadowFunction'}",
    }
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage") in metrics
    runs = alarms["BatchRunsFailedAlarm"]["Properties"]["Metrics"]
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in runs if "MetricStat" in m} == {
        "ExecutionsFailed",
        "ExecutionsTimedOut",
        "ExecutionsAborted",
    }


def test_outputs_name_the_api_bucket_and_queue() -> None:
    outputs = load_template()["Outputs"]
    assert {"ApiUrl", "ArtifactsBucketName", "BatchQueueUrl", "RegistryStore"} <= set(outputs)


def test_the_state_machine_logs_errors_without_execution_data(cloud: dict[str, Any]) -> None:
    machine = cloud["BatchStateMachine"]["Properties"]
    assert machine["LoggingConfiguration"] == {
        "Level": "ERROR",
        "IncludeExecutionData": False,
        "Destinations": [
            {
                "CloudWatchLogsLogGroup": {
                    "LogGroupArn": {"Fn::GetAtt": ["BatchStateMachineLogs", "Arn"]}
                }
            }
        ],
    }
    role = cloud[machine["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
    granted = {
        a
        for p in role["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert {"logs:CreateLogDelivery", "logs:PutResourcePolicy"} <= granted


def test_new_code_publishes_a_new_version_for_the_live_alias(packaged: Packaged) -> None:
    def versions(code_uri: str | None) -> set[str]:
        template = packaged.template()
        if code_uri:
            for name in ("Predictdigitsmlp", "ControlPlane"):
                template["Resources"][name]["Properties"]["CodeUri"] = code_uri
        resources = sam_transform(template)["Resources"]
        return {k for k, r in resources.items() if r["Type"] == "AWS::Lambda::Version"}

    before, after = versions(None), versions("s3://bucket/another-bundle")
    assert len(before) == 2 and not before & after  # the aliases move to the new code


def test_a_predict_code_deploy_is_a_canary_rolled_back_by_its_alarms(
    cloud: dict[str, Any],
) -> None:
    """SAM turns each predict function's DeploymentPreference into a CodeDeploy deployment
    group on its `live` alias, with the 5xx, latency and error alarms as rollback triggers."""
    groups = of_type(cloud, "AWS::CodeDeploy::DeploymentGroup")
    assert set(groups) == {"PredictdigitsmlpDeploymentGroup", "PredictirisDeploymentGroup"}
    for logical, group in groups.items():
        function = logical.removesuffix("DeploymentGroup")
        props = group["Properties"]
        alarms = {a["Name"]["Ref"] for a in props["AlarmConfiguration"]["Alarms"]}
        assert alarms == {f"{function}5xx", f"{function}Latency", f"{function}Errors"}
        assert props["AlarmConfiguration"]["Enabled"] is True
        assert props["AutoRollbackConfiguration"]["Events"] == [
            "DEPLOYMENT_FAILURE",
            "DEPLOYMENT_STOP_ON_ALARM",
            "DEPLOYMENT_STOP_ON_REQUEST",
        ]
        config = json.dumps(props["DeploymentConfigName"])
        assert "Canary10Percent5Minutes" in config  # PredictDeploymentType, its default
    five = cloud["Predictdigitsmlp5xx"]["Properties"]
    assert (five["Namespace"], five["MetricName"]) == ("aiaas", "aiaas_requests_total")
    assert five["Dimensions"] == [
        {"Name": "model", "Value": "digits-mlp"},
        {"Name": "status_class", "Value": "5xx"},
    ]
