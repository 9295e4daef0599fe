"""Creating the resources moto's CloudFormation does not model, with the service APIs moto has,
from their template properties (already resolved). Each returns what `Ref` gives for it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3

from tests.infra.cloudformation_offline import REGION, as_json, camel


class DirectApi:
    """One client per service, all on the moto server at `endpoint`."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            make: Any = boto3.client  # typed per service name; any name is fine here
            self._clients[service] = make(service, endpoint_url=self.endpoint, region_name=REGION)
        return self._clients[service]

    def create(self, logical: str, kind: str, props: dict[str, Any]) -> str:
        creator: Callable[[DirectApi, str, dict[str, Any]], str] = CREATORS[kind]
        return creator(self, logical, props)

    # ---- one method per resource type ---------------------------------------------------

    def alias(self, logical: str, props: dict[str, Any]) -> str:
        lam = self.client("lambda")
        found = lam.create_alias(
            FunctionName=props["FunctionName"],
            Name=props["Name"],
            FunctionVersion=props["FunctionVersion"],
        )
        warm = props.get("ProvisionedConcurrencyConfig")
        if warm:
            lam.put_provisioned_concurrency_config(
                FunctionName=props["FunctionName"],
                Qualifier=props["Name"],
                ProvisionedConcurrentExecutions=warm["ProvisionedConcurrentExecutions"],
            )
        return str(found["AliasArn"])

    def permission(self, logical: str, props: dict[str, Any]) -> str:
        function, _, qualifier = _function_and_qualifier(props["FunctionName"])
        self.client("lambda").add_permission(
            FunctionName=function,
            StatementId=logical,
            Action=props["Action"],
            Principal=props["Principal"],
            SourceArn=props["SourceArn"],
            **({"Qualifier": qualifier} if qualifier else {}),
        )
        return logical

    def http_api(self, logical: str, props: dict[str, Any]) -> str:
        # moto answers ImportApi with "not implemented"; ReimportApi reads the same OpenAPI body.
        v2 = self.client("apigatewayv2")
        body = props["Body"]
        api_id = v2.create_api(Name=body["info"]["title"], ProtocolType="HTTP")["ApiId"]
        v2.reimport_api(ApiId=api_id, Body=json.dumps(body))
        return str(api_id)

    def stage(self, logical: str, props: dict[str, Any]) -> str:
        self.client("apigatewayv2").create_stage(**props)
        return str(props["StageName"])

    def alarm(self, logical: str, props: dict[str, Any]) -> str:
        self.client("cloudwatch").put_metric_alarm(AlarmName=logical, **props)
        return logical

    def bucket_policy(self, logical: str, props: dict[str, Any]) -> str:
        self.client("s3").put_bucket_policy(
            Bucket=props["Bucket"], Policy=as_json(props["PolicyDocument"])
        )
        return logical

    def queue_policy(self, logical: str, props: dict[str, Any]) -> str:
        for url in props["Queues"]:
            self.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": as_json(props["PolicyDocument"])}
            )
        return logical

    def subscription(self, logical: str, props: dict[str, Any]) -> str:
        found = self.client("sns").subscribe(
            TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"]
        )
        return str(found["SubscriptionArn"])

    def user_pool(self, logical: str, props: dict[str, Any]) -> str:
        mfas = props.pop("EnabledMfas", [])
        idp = self.client("cognito-idp")
        pool = idp.create_user_pool(PoolName=logical, **props)["UserPool"]["Id"]
        if "SOFTWARE_TOKEN_MFA" in mfas:
            idp.set_user_pool_mfa_config(
                UserPoolId=pool,
                SoftwareTokenMfaConfiguration={"Enabled": True},
                MfaConfiguration=props.get("MfaConfiguration", "OPTIONAL"),
            )
        return str(pool)

    def user_pool_client(self, logical: str, props: dict[str, Any]) -> str:
        found = self.client("cognito-idp").create_user_pool_client(ClientName=logical, **props)
        return str(found["UserPoolClient"]["ClientId"])

    def codebuild_project(self, logical: str, props: dict[str, Any]) -> str:
        spec = camel(props)
        self.client("codebuild").create_project(name=logical, **spec)
        return logical

    def codedeploy_application(self, logical: str, props: dict[str, Any]) -> str:
        self.client("codedeploy").create_application(
            applicationName=logical, computePlatform=props["ComputePlatform"]
        )
        return logical

    def codedeploy_group(self, logical: str, props: dict[str, Any]) -> str:
        """A predict function's canary deployment group (its DeploymentPreference)."""
        spec = camel(props)
        self.client("codedeploy").create_deployment_group(deploymentGroupName=logical, **spec)
        return logical

    def log_subscription(self, logical: str, props: dict[str, Any]) -> str:
        """A predict function's log group -> ShadowFunction (the shadow copies' way out)."""
        self.client("logs").put_subscription_filter(
            logGroupName=props["LogGroupName"],
            filterName=props.get("FilterName", logical),
            filterPattern=props["FilterPattern"],
            destinationArn=props["DestinationArn"],
        )
        return logical

    def bucket_settings(self, bucket: str, props: dict[str, Any]) -> None:
        """The bucket properties moto's CloudFormation drops (MOTO_DROPS), with the S3 API."""
        s3 = self.client("s3")
        s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration=props["VersioningConfiguration"]
        )
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={
                "Rules": [_lifecycle_rule(r) for r in props["LifecycleConfiguration"]["Rules"]]
            },
        )
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
        notification = props["NotificationConfiguration"]
        assert notification == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    api: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": ""}}
    if "NoncurrentVersionExpiration" in rule:
        days = int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        api["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
    if "AbortIncompleteMultipartUpload" in rule:
        api["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    return api


def _function_and_qualifier(name: str) -> tuple[str, str, str]:
    # An alias ARN: arn:aws:lambda:REGION:ACCOUNT:function:NAME:ALIAS
    parts = name.split(":")
    if name.startswith("arn:") and len(parts) == 8:
        return parts[6], ":", parts[7]
    return name, "", ""


CREATORS: dict[str, Callable[[DirectApi, str, dict[str, Any]], str]] = {
    "AWS::Lambda::Alias": DirectApi.alias,
    "AWS::Lambda::Permission": DirectApi.permission,
    "AWS::ApiGatewayV2::Api": DirectApi.http_api,
    "AWS::ApiGatewayV2::Stage": DirectApi.stage,
    "AWS::CloudWatch::Alarm": DirectApi.alarm,
    "AWS::S3::BucketPolicy": DirectApi.bucket_policy,
    "AWS::SQS::QueuePolicy": DirectApi.queue_policy,
    "AWS::SNS::Subscription": DirectApi.subscription,
    "AWS::Cognito::UserPool": DirectApi.user_pool,
    "AWS::Cognito::UserPoolClient": DirectApi.user_pool_client,
    "AWS::CodeBuild::Project": DirectApi.codebuild_project,
    "AWS::CodeDeploy::Application": DirectApi.codedeploy_application,
    "AWS::CodeDeploy::DeploymentGroup": DirectApi.codedeploy_group,
    "AWS::Logs::SubscriptionFilter": DirectApi.log_subscription,
}
