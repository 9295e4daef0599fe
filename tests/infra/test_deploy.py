"""The documented deploy path, end to end, offline: `sam build` -> `sam package` to moto's S3 on
loopback (tests/infra/conftest.py) -> every function's uploaded bundle checked -> the SAM
transform of the packaged template -> moto's CloudFormation creates the stack.

What moto's CloudFormation does not model is created with the service APIs moto has, from the
same resolved properties (tests/infra/cloudformation_offline.py lists them and why).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from functions.batch.events import sqs_body_records
from infra.template import parameter_defaults
from infra.training_image import SOURCE_KEY, source_zip
from infra.training_image import start as start_image_build
from tests.infra.cloudformation_offline import (
    GAPS,
    REGION,
    Intrinsics,
    creation_order,
    flat_parameters,
    modeled,
    pseudo_parameters,
    split,
    stack_template,
)
from tests.infra.conftest import Packaged
from tests.infra.direct_api import DirectApi
from tests.infra.test_template_checks import sam_transform

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
STACK = "aiaas"


def s3(packaged: Packaged) -> Any:
    return boto3.client("s3", endpoint_url=packaged.server.endpoint, region_name=REGION)


# ---- the stack ----------------------------------------------------------------------------


@dataclass
class Deployed:
    template: dict[str, Any]  # transformed
    resources: dict[str, Any]  # the transformed template's
    stack: set[str]
    direct: dict[str, str]  # logical id -> what Ref gives, for the direct-API ones
    intrinsics: Intrinsics
    api: DirectApi


def network(api: DirectApi) -> dict[str, str]:
    """A VPC, subnet and security group in moto for the training compute environment."""
    ec2 = api.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="training", Description="egress", VpcId=vpc)
    return {"TrainingSubnetIds": subnet, "TrainingSecurityGroupIds": group["GroupId"]}


def moto_only(api: DirectApi) -> dict[str, str]:
    """Values for what moto requires and AWS does not (cloudformation_offline.MOTO_REQUIRES)."""
    role = api.client("iam").create_role(
        RoleName="moto-batch-service-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "batch.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    return {"ServiceRole": role["Role"]["Arn"]}


def deploy_parameters(api: DirectApi) -> dict[str, Any]:
    """Every optional part switched on, so each resource is created somewhere."""
    return {
        "Training": "Enabled",
        "UserPool": "Create",
        "AlarmEmail": "ops@example.com",
        "CorsAllowOrigins": "https://app.example.com",
        **network(api),
    }


@pytest.fixture(scope="module")
def deployed(packaged: Packaged) -> Iterator[Deployed]:
    api = DirectApi(packaged.server.endpoint)
    overrides = deploy_parameters(api)
    template = sam_transform(packaged.template(), **overrides)
    resources = template["Resources"]
    stack, direct = split(resources)
    values = {**parameter_defaults(template), **overrides}
    cfn = api.client("cloudformation")
    cfn.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(stack_template(template, stack, moto_only(api))),
        Parameters=flat_parameters(values),
        Capabilities=["CAPABILITY_IAM"],
    )
    cfn.get_waiter("stack_create_complete").wait(
        StackName=STACK, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    stack_id = cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackId"]
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    }
    physical.update(published_versions(api, resources, physical))
    attribute = Attributes(api, resources, physical)
    intrinsics = Intrinsics(
        {**values, **pseudo_parameters(STACK, stack_id)},
        template.get("Conditions", {}),
        physical,
        attribute,
    )
    bucket = resources["ArtifactsBucket"]
    api.bucket_settings(physical["ArtifactsBucket"], intrinsics.resolve(bucket["Properties"]))
    made: dict[str, str] = {}
    for logical in creation_order(resources, direct):
        resource = resources[logical]
        if "Condition" in resource and not intrinsics.condition(resource["Condition"]):
            continue
        props = intrinsics.resolve(resource.get("Properties", {}))
        made[logical] = physical[logical] = api.create(logical, resource["Type"], props)
    yield Deployed(template, resources, stack, made, intrinsics, api)


def published_versions(
    api: DirectApi, resources: dict[str, Any], physical: dict[str, str]
) -> dict[str, str]:
    """Version ARNs (what Ref gives) of the stack's Lambda versions: moto lists them with an
    empty physical id, so they are read from Lambda, where each must exist."""
    found = {}
    for logical, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Version" or physical.get(logical):
            continue
        function = physical[resource["Properties"]["FunctionName"]["Ref"]]
        versions = api.client("lambda").list_versions_by_function(FunctionName=function)
        (published,) = [v for v in versions["Versions"] if v["Version"] != "$LATEST"]
        found[logical] = str(published["FunctionArn"])
    return found


class Attributes:
    """Fn::GetAtt for the stack's resources, read back from moto's service APIs."""

    def __init__(self, api: DirectApi, resources: dict[str, Any], physical: dict[str, str]):
        self.api, self.resources, self.physical = api, resources, physical

    def __call__(self, logical: str, name: str) -> str:
        kind, ref = self.resources[logical]["Type"], self.physical[logical]
        if (kind, name) == ("AWS::IAM::Role", "Arn"):
            return str(self.api.client("iam").get_role(RoleName=ref)["Role"]["Arn"])
        if (kind, name) == ("AWS::S3::Bucket", "Arn"):
            return f"arn:aws:s3:::{ref}"
        if kind == "AWS::SQS::Queue":
            attrs = self.api.client("sqs").get_queue_attributes(
                QueueUrl=ref, AttributeNames=["QueueArn"]
            )["Attributes"]
            return str(attrs["QueueArn"] if name == "Arn" else ref.rsplit("/", 1)[1])
        if (kind, name) == ("AWS::Logs::LogGroup", "Arn"):
            (group,) = self.api.client("logs").describe_log_groups(logGroupNamePrefix=ref)[
                "logGroups"
            ]
            return str(group["arn"])
        if (kind, name) == ("AWS::Lambda::Function", "Arn"):
            config = self.api.client("lambda").get_function(FunctionName=ref)["Configuration"]
            return str(config["FunctionArn"])
        if (kind, name) == ("AWS::Events::Rule", "Arn"):
            return str(self.api.client("events").describe_rule(Name=ref)["Arn"])
        if (kind, name) == ("AWS::Lambda::Version", "Version"):
            return ref.rsplit(":", 1)[1]
        if kind == "AWS::ECR::Repository":
            (repo,) = self.api.client("ecr").describe_repositories(repositoryNames=[ref])[
                "repositories"
            ]
            return str(repo["repositoryArn" if name == "Arn" else "repositoryUri"])
        raise AssertionError(f"no reader for {logical}.{name} ({kind})")


def test_the_stack_reaches_create_complete_with_every_modeled_resource(
    deployed: Deployed,
) -> None:
    cfn = deployed.api.client("cloudformation")
    assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    summaries = cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    statuses = {r["LogicalResourceId"]: r["ResourceStatus"] for r in summaries}
    assert statuses == dict.fromkeys(deployed.stack, "CREATE_COMPLETE")
    unmodeled = {r["Type"] for r in deployed.resources.values() if not modeled(r["Type"])}
    assert unmodeled == set(GAPS)  # a type moto gains or the template adds shows up here
    assert set(deployed.direct) | deployed.stack == set(deployed.resources)


def test_lambda_holds_every_function_from_the_packaged_bundle(
    deployed: Deployed, packaged: Packaged
) -> None:
    lam = deployed.api.client("lambda")
    for logical, resource in deployed.resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        name = deployed.intrinsics.physical[logical]
        config = lam.get_function(FunctionName=name)["Configuration"]
        code = resource["Properties"]["Code"]
        size = s3(packaged).head_object(Bucket=code["S3Bucket"], Key=code["S3Key"])
        assert config["Runtime"] == "python3.12"
        # moto drops Architectures (MOTO_DROPS): the property it was given is arm64.
        assert resource["Properties"]["Architectures"] == ["arm64"]
        assert config["Handler"] == resource["Properties"]["Handler"]
        assert config["CodeSize"] == size["ContentLength"], logical


def test_the_api_routes_every_path_to_its_alias(deployed: Deployed) -> None:
    v2 = deployed.api.client("apigatewayv2")
    api_id = deployed.direct["Api"]
    routes = {r["RouteKey"] for r in v2.get_routes(ApiId=api_id)["Items"]}
    assert "POST /models/digits-mlp/predict" in routes
    # one model: 12 routes; health 3; /docs, /openapi.json and control (one a method) 2 + 6
    assert len(routes) == 12 + 3 + 2 + 6
    stage = v2.get_stage(ApiId=api_id, StageName="$default")
    assert stage["AccessLogSettings"]["DestinationArn"].startswith("arn:aws:logs:")
    lam = deployed.api.client("lambda")
    alias = lam.get_alias(
        FunctionName=deployed.intrinsics.physical["Predictdigitsmlp"], Name="live"
    )
    policy = json.loads(
        lam.get_policy(FunctionName=alias["AliasArn"].rsplit(":", 1)[0], Qualifier="live")["Policy"]
    )
    assert any(api_id in str(s["Condition"]) for s in policy["Statement"])


def test_alarms_notify_the_topic_and_its_email(deployed: Deployed) -> None:
    alarms = deployed.api.client("cloudwatch").describe_alarms()["MetricAlarms"]
    topic = deployed.intrinsics.physical["AlarmTopic"]
    assert {a["AlarmName"] for a in alarms} == {
        k for k, r in deployed.resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert {tuple(a["AlarmActions"]) for a in alarms} == {(topic,)}
    (subscription,) = deployed.api.client("sns").list_subscriptions_by_topic(TopicArn=topic)[
        "Subscriptions"
    ]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "ops@example.com")


def test_each_predict_log_group_sends_shadow_copies_to_the_shadow_function(
    deployed: Deployed,
) -> None:
    logs, physical = deployed.api.client("logs"), deployed.intrinsics.physical
    shadow = deployed.intrinsics.attribute("ShadowFunction", "Arn")
    predict = [k for k in deployed.resources if k.startswith("Predict") and k.endswith("Logs")]
    assert predict
    for group in predict:
        (found,) = logs.describe_subscription_filters(logGroupName=physical[group])[
            "subscriptionFilters"
        ]
        assert (found["filterPattern"], found["destinationArn"]) == (
            "{ $.aiaas_shadow = 1 }",
            shadow,
        )


def test_only_batch_inputs_reach_the_queue_and_only_from_this_stack_s_rule(
    deployed: Deployed,
) -> None:
    """Objects put in the bucket go through moto's S3 -> EventBridge -> the rule -> SQS; the
    queue is read as Lambda would (its event source mapping is paused: no Docker to run it)."""
    assert "BatchInputRule" in deployed.stack  # moto's CloudFormation creates the rule
    queue = deployed.intrinsics.physical["BatchQueue"]
    sqs, s3, lam = (deployed.api.client(s) for s in ("sqs", "s3", "lambda"))
    rule_arn = deployed.intrinsics.attribute("BatchInputRule", "Arn")
    for url in (queue, deployed.intrinsics.physical["BatchDeadLetterQueue"]):
        policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
        (statement,) = json.loads(policy["Attributes"]["Policy"])["Statement"]
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
    bucket = deployed.intrinsics.physical["ArtifactsBucket"]
    inputs = ["registry/batch/digits-mlp/input/a b.csv", "registry/batch/iris/input/d/x.jsonl"]
    others = [
        "registry/batch/digits-mlp/output/a b.csv",
        "registry/batch/digits-mlp/output/a b.csv.summary.json",
        "registry/models/digits-mlp/aliases/production",
        "registry/uploads/big.csv",
    ]
    queue_arn = deployed.intrinsics.attribute("BatchQueue", "Arn")
    (mapping,) = lam.list_event_source_mappings(EventSourceArn=queue_arn)["EventSourceMappings"]
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)  # it refuses plain HTTP: this loopback server's
    # moto offers every bucket event to every rule, the drift job's schedule too (it has no
    # pattern), and its Lambda target raises there, ending delivery to the rules after it.
    # AWS never sends events to a schedule rule: its target is set aside meanwhile.
    events = deployed.api.client("events")
    schedule = deployed.intrinsics.physical["DriftJobHourly"]
    drift_targets = events.list_targets_by_rule(Rule=schedule)["Targets"]
    events.remove_targets(Rule=schedule, Ids=[t["Id"] for t in drift_targets])
    try:
        for key in [*others, *inputs]:
            s3.put_object(Bucket=bucket, Key=key, Body=b"1,2\n")
        bodies = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    finally:
        events.put_targets(Rule=schedule, Targets=drift_targets)
        s3.put_bucket_policy(Bucket=bucket, Policy=policy)
        lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    announced = [r for m in bodies for r in sqs_body_records(m["Body"])]
    assert sorted(r.key for r in announced) == inputs
    assert {r.bucket for r in announced} == {bucket}
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert {r["ID"] for r in rules} == {
        "expire-old-versions",
        "abort-incomplete-uploads",
        "expire-capture",
        "expire-monitoring",
    }


def test_training_image_repository_and_build_project(deployed: Deployed) -> None:
    project = deployed.api.client("codebuild").batch_get_projects(names=["TrainingImageBuild"])[
        "projects"
    ][0]
    bucket = deployed.intrinsics.physical["ArtifactsBucket"]
    assert project["source"]["location"] == f"{bucket}/build/training-source.zip"
    assert project["environment"]["privilegedMode"] is True
    job = deployed.api.client("batch").describe_job_definitions()["jobDefinitions"][0]
    repository = deployed.intrinsics.attribute("TrainingRepository", "RepositoryUri")
    assert job["containerProperties"]["image"] == f"{repository}:latest"
    assert job["containerProperties"]["command"][:3] == ["python3", "-m", "training"]


def test_the_training_image_builds_from_the_uploaded_source(deployed: Deployed) -> None:
    outputs = {
        name: deployed.intrinsics.resolve(out["Value"])
        for name, out in deployed.template["Outputs"].items()
        if "Condition" not in out or deployed.intrinsics.condition(out["Condition"])
    }
    session = boto3.Session(region_name=REGION)
    session_client = session.client

    def client(service: str) -> Any:
        return session_client(service, endpoint_url=deployed.api.endpoint)  # type: ignore[call-overload]

    session.client = client  # type: ignore[method-assign]
    # moto enforces the stack's bucket policy: plain HTTP (this loopback server) is refused...
    with pytest.raises(ClientError, match="Forbidden"):
        start_image_build(session, outputs, "t1")
    # ...so, standing in for TLS, the policy goes (this test runs last: nothing after needs it).
    deployed.api.client("s3").delete_bucket_policy(Bucket=outputs["ArtifactsBucketName"])
    build_id, image = start_image_build(session, outputs, "t1")
    assert image == f"{outputs['TrainingRepositoryUri']}:t1"
    body = deployed.api.client("s3").get_object(
        Bucket=outputs["ArtifactsBucketName"], Key=SOURCE_KEY
    )
    names = zipfile.ZipFile(io.BytesIO(body["Body"].read())).namelist()
    assert {"training/Dockerfile", "pyproject.toml", "functions/runtime/manifest.py"} <= set(names)
    (build,) = deployed.api.client("codebuild").batch_get_builds(ids=[build_id])["builds"]
    assert build["projectName"] == "TrainingImageBuild"


def test_the_source_zip_holds_no_byte_code() -> None:
    names = zipfile.ZipFile(io.BytesIO(source_zip())).namelist()
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert "training/Dockerfile" in names
