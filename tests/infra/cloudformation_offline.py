"""A transformed template deployed to moto, for tests/infra/test_deploy.py.

moto's CloudFormation creates the resource types it models (create_stack, CREATE_COMPLETE).
For the types it does not model (GAPS, with the limitation) the test creates each resource with
the service API moto does have, from the same template properties, intrinsics resolved against
what the stack created. A modeled resource that references an unmodeled one (a Lambda
permission on an alias) goes the same way, since moto cannot resolve the reference.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from moto.cloudformation.parsing import resource_class_from_type

# moto 5.x: resource types its CloudFormation does not model (create_stack skips them with a
# warning and the stack still reports CREATE_COMPLETE). docs/deploy.md lists the same.
GAPS = {
    "AWS::ApiGatewayV2::Api": "moto models API Gateway v2 only through its API (import_api)",
    "AWS::ApiGatewayV2::Stage": "moto models API Gateway v2 only through its API (create_stage)",
    "AWS::CloudWatch::Alarm": "not modeled by moto's CloudFormation (put_metric_alarm is)",
    "AWS::CodeBuild::Project": "not modeled by moto's CloudFormation (create_project is)",
    "AWS::CodeDeploy::Application": "not modeled (create_application is)",
    "AWS::CodeDeploy::DeploymentGroup": "not modeled (create_deployment_group is)",
    "AWS::Cognito::UserPool": "not modeled by moto's CloudFormation (create_user_pool is)",
    "AWS::Cognito::UserPoolClient": "not modeled (create_user_pool_client is)",
    "AWS::Lambda::Alias": "not modeled by moto's CloudFormation (create_alias is)",
    "AWS::Logs::SubscriptionFilter": "not modeled (put_subscription_filter is)",
    "AWS::S3::BucketPolicy": "not modeled by moto's CloudFormation (put_bucket_policy is)",
    "AWS::SNS::Subscription": "not modeled by moto's CloudFormation (subscribe is)",
    "AWS::SQS::QueuePolicy": "not modeled by moto's CloudFormation (set_queue_attributes is)",
}
# Properties moto requires where AWS does not: the test fills them in moto's copy only.
MOTO_REQUIRES = {
    ("AWS::Batch::ComputeEnvironment", "ServiceRole"): "moto requires a service role; AWS "
    "uses the AWSServiceRoleForBatch service-linked role when none is given",
}
# Properties moto's CloudFormation accepts but drops (moto 5.x creates a bucket with only its
# encryption and tags, and every Lambda function as x86_64). The test applies the bucket's with
# the S3 API from the same template properties and checks the functions' and the state
# machine's in the template.
MOTO_DROPS = {
    "AWS::S3::Bucket": (
        "VersioningConfiguration",
        "LifecycleConfiguration",
        "PublicAccessBlockConfiguration",
        "NotificationConfiguration",
    ),
    "AWS::Lambda::Function": ("Architectures", "LoggingConfig", "SnapStart"),
    "AWS::StepFunctions::StateMachine": ("LoggingConfiguration",),  # test_template_checks.py
}
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"


def modeled(resource_type: str) -> bool:
    return resource_class_from_type(resource_type) is not None


def references(node: Any) -> set[str]:
    """Logical ids and parameters a property tree refers to (Ref, GetAtt, ${} in Sub)."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                if not isinstance(value, str):
                    found |= references(value[1])
            else:
                found |= references(value)
    return found


def split(resources: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """(created by create_stack, created by direct API calls)."""
    stack = {k for k, r in resources.items() if modeled(r["Type"])}
    while True:
        outside = set(resources) - stack
        leaving = {k for k in stack if references(resources[k].get("Properties", {})) & outside}
        if not leaving:
            return stack, set(resources) - stack
        stack -= leaving


def stack_template(
    template: Mapping[str, Any], stack: set[str], moto_only: Mapping[str, Any]
) -> dict[str, Any]:
    """The template with only `stack`'s resources (and outputs that need nothing else).

    DependsOn on a resource created later is dropped: it orders S3's check that it may notify
    the queue (bucket after queue policy), which moto does not make. `moto_only` fills the
    MOTO_REQUIRES properties (value per property name) the template leaves to AWS.
    """
    resources = {}
    for logical in stack:
        resource = dict(template["Resources"][logical])
        needs = [p for (kind, p) in MOTO_REQUIRES if kind == resource["Type"]]
        if needs:
            props = resource.get("Properties", {})
            resource["Properties"] = {**props, **{p: moto_only[p] for p in needs if p not in props}}
        depends = resource.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else depends
        kept = [d for d in depends if d in stack]
        resource.pop("DependsOn", None)
        if kept:
            resource["DependsOn"] = kept
        resources[logical] = resource
    outputs = {
        name: out
        for name, out in template.get("Outputs", {}).items()
        if references(out) & set(template["Resources"]) <= stack
    }
    return {**template, "Resources": resources, "Outputs": outputs}


def creation_order(resources: Mapping[str, Any], direct: set[str]) -> list[str]:
    """`direct` so that each comes after the direct resources it refers to."""
    ordered: list[str] = []
    pending = set(direct)
    while pending:
        ready = sorted(
            k for k in pending if not references(resources[k].get("Properties", {})) & pending
        )
        assert ready, f"reference cycle among {sorted(pending)}"
        ordered += ready
        pending -= set(ready)
    return ordered


class Intrinsics:
    """Resolves Ref, GetAtt, Sub, If, Join, Select, Split, Equals, Not against parameter values,
    conditions and the physical ids (and attributes) of created resources."""

    def __init__(
        self,
        values: Mapping[str, Any],
        conditions: Mapping[str, Any],
        physical: dict[str, str],
        attribute: Callable[[str, str], str],
    ) -> None:
        self.values = dict(values)
        self.conditions = conditions
        self.physical = physical
        self.attribute = attribute

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions[name]))

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(item) for item in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            handler = _HANDLERS.get(key)
            if handler is not None:
                return handler(self, arg)
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.values:
            return self.values[name]
        return self.physical[name]

    def sub(self, arg: Any) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in extra:
                return str(extra[name])
            if "." in name and not name.startswith("AWS::"):
                return self.attribute(*name.split(".", 1))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", one, text).replace("${!", "${")


_NO_VALUE = object()
_HANDLERS: dict[str, Callable[[Intrinsics, Any], Any]] = {
    "Ref": lambda r, a: r.ref(a),
    "Fn::GetAtt": lambda r, a: r.attribute(*(a if isinstance(a, list) else a.split(".", 1))),
    "Fn::Sub": lambda r, a: r.sub(a),
    "Fn::If": lambda r, a: r.resolve(a[1] if r.condition(a[0]) else a[2]),
    "Fn::Join": lambda r, a: str(a[0]).join(str(x) for x in r.resolve(a[1])),
    "Fn::Select": lambda r, a: r.resolve(a[1])[int(r.resolve(a[0]))],
    "Fn::Split": lambda r, a: str(r.resolve(a[1])).split(a[0]),
    "Fn::Equals": lambda r, a: r.resolve(a[0]) == r.resolve(a[1]),
    "Fn::Not": lambda r, a: not r.resolve(a[0]),
    "Condition": lambda r, a: r.condition(a),
}


def pseudo_parameters(stack_name: str, stack_id: str) -> dict[str, str]:
    return {
        "AWS::AccountId": ACCOUNT,
        "AWS::Region": REGION,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": stack_name,
        "AWS::StackId": stack_id,
    }


def flat_parameters(values: Mapping[str, Any]) -> list[dict[str, str]]:
    """create_stack's Parameters from Python values (lists comma-joined)."""
    return [
        {"ParameterKey": k, "ParameterValue": ",".join(v) if isinstance(v, list) else str(v)}
        for k, v in values.items()
    ]


_CAMEL_EXCEPTIONS = {"BuildSpec": "buildspec"}


def camel(node: Any) -> Any:
    """CloudFormation's PascalCase keys as the camelCase some APIs (CodeBuild) take."""
    if isinstance(node, list):
        return [camel(item) for item in node]
    if isinstance(node, dict):
        return {_CAMEL_EXCEPTIONS.get(k, k[:1].lower() + k[1:]): camel(v) for k, v in node.items()}
    return node


def as_json(policy: Any) -> str:
    return json.dumps(policy, separators=(",", ":"))


def names(items: Iterable[Mapping[str, Any]], key: str) -> set[str]:
    return {str(item[key]) for item in items}
