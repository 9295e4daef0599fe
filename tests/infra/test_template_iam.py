"""Least privilege in template.yaml: each predict function reads only its own model, health
lists only the model names, batch writes only under batch/, the control plane only aliases and
batch inputs, only this stack's rule may send to the queue, the state machine may only set up
its log delivery, and the bucket is private, versioned, encrypted, refuses plain HTTP, outlives
the stack and expires old versions."""

from __future__ import annotations

import fnmatch
from typing import Any

from infra.template import load_template, served_resources

MODELS = ["digits-mlp", "iris"]


def statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s
        for policy in resource["Properties"].get("Policies", [])
        for s in policy.get("Statement", [])
    ]


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def resources_of(statement: dict[str, Any]) -> list[str]:
    found = statement["Resource"]
    return [
        r["Fn::Sub"] if isinstance(r, dict) else r
        for r in (found if isinstance(found, list) else [found])
    ]


def expanded_resources() -> dict[str, Any]:
    """The template's resources with a second model, as `infra.model_resources --write` adds it."""
    return served_resources(load_template(), MODELS)


def test_a_predict_function_reads_only_its_own_model_and_writes_only_its_drift_and_capture() -> (
    None
):
    resources = expanded_resources()
    for model, logical in (("digits-mlp", "Predictdigitsmlp"), ("iris", "Predictiris")):
        found = statements(resources[logical])
        assert all("*" not in a for s in found for a in actions_of(s))
        assert {a for s in found for a in actions_of(s)} == {
            "s3:GetObject",
            "s3:ListBucket",
            "s3:PutObject",
        }
        writes = [r for s in found if "s3:PutObject" in actions_of(s) for r in resources_of(s)]
        assert writes == [  # drift histograms and captured requests, its own model's only
            f"arn:${{AWS::Partition}}:s3:::${{ArtifactsBucket}}/registry/monitoring/{model}/*",
            f"arn:${{AWS::Partition}}:s3:::${{ArtifactsBucket}}/registry/capture/{model}/*",
        ]
        reads = [r for s in found if "s3:GetObject" in actions_of(s) for r in resources_of(s)]
        assert reads == [
            f"arn:${{AWS::Partition}}:s3:::${{ArtifactsBucket}}/registry/models/{model}/*"
        ]
        listing = next(s for s in found if "s3:ListBucket" in actions_of(s))
        assert listing["Condition"] == {"StringLike": {"s3:prefix": f"registry/models/{model}/*"}}


def test_batch_writes_only_under_batch() -> None:
    found = statements(expanded_resources()["BatchFunction"])
    writes = [
        r
        for s in found
        for r in resources_of(s)
        if {"s3:PutObject", "s3:DeleteObject"} & set(actions_of(s))
    ]
    assert writes and all(r.endswith("/registry/batch/*") for r in writes)
    assert all("*" not in a for s in found for a in actions_of(s))
    # Only what functions/runtime/s3store.py and s3upload.py call (a multipart upload is
    # s3:PutObject; nothing lists an upload's parts) and the Distributed Map it starts.
    assert {a for s in found for a in actions_of(s)} == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "s3:ListBucket",
        "states:StartExecution",
        "states:DescribeExecution",
    }


def test_control_plane_writes_only_aliases_settings_rollouts_inputs_and_prunes() -> None:
    every = statements(expanded_resources()["ControlPlane"])
    found = [s for s in every if s["Effect"] == "Allow"]
    writes = sorted(
        r
        for s in found
        for r in resources_of(s)
        if {"s3:PutObject", "s3:DeleteObject"} & set(actions_of(s))
    )
    assert [w.split("/registry/", 1)[1] for w in writes] == [
        "batch/*/input/*",
        "models/*/aliases/*",
        "models/*/capture.json",
        "models/*/deleted_aliases/*",  # DELETE .../aliases/{a}: the record it had
        "models/*/pruned.json",  # DELETE .../versions/{v}: its record,
        "models/*/rollouts/*",
        "models/*/versions/*",  # the version's files (s3:DeleteObject only),
        "models/*/versions/*/manifest.json",  # and its manifest put back after a racing promote
    ]
    deletes = {r for s in found for r in resources_of(s) if "s3:DeleteObject" in actions_of(s)}
    puts = {r for s in found for r in resources_of(s) if "s3:PutObject" in actions_of(s)}
    assert any(r.endswith("/models/*/versions/*") for r in deletes)
    assert not any(r.endswith("/models/*/versions/*") for r in puts)  # no new model files
    (put_back,) = [s for s in found if any(r.endswith("/manifest.json") for r in resources_of(s))]
    # create-only: the role may put a deleted manifest back, never replace a version's
    assert put_back["Condition"] == {"Null": {"s3:if-none-match": "false"}}
    # and nothing else into a version: `*` matches '/', so models/*/aliases/* also names
    # models/m/versions/aliases/manifest.json (tests/infra/test_function_role_requests.py)
    (deny,) = [s for s in every if s["Effect"] == "Deny"]
    assert [r.split("/registry/", 1)[1] for r in resources_of(deny)] == ["models/*/versions/*"]
    assert (actions_of(deny), deny["Condition"]) == (
        ["s3:PutObject"],
        {"Null": {"s3:if-none-match": "true"}},
    )
    # SQS: the depths of the stack's two batch queues only (a job pending past 7.5 h), never
    # a message read, sent or deleted; the queues its environment names
    sqs = [s for s in found if any(a.startswith("sqs:") for a in actions_of(s))]
    assert [(actions_of(s), resources_of(s)) for s in sqs] == [
        (
            ["sqs:GetQueueAttributes"],
            [
                f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:"
                f"${{AWS::StackName}}-{queue}"
                for queue in ("batch-input", "batch-dlq")
            ],
        )
    ]
    env = load_template()["Resources"]["ControlPlane"]["Properties"]["Environment"]["Variables"]
    assert (env["AIAAS_BATCH_QUEUE_URL"], env["AIAAS_BATCH_DLQ_URL"]) == (
        {"Ref": "BatchQueue"},
        {"Ref": "BatchDeadLetterQueue"},
    )


def test_bucket_is_private_versioned_encrypted_and_tls_only() -> None:
    resources = load_template()["Resources"]
    bucket = resources["ArtifactsBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert (
        bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ]["SSEAlgorithm"]
        == "AES256"
    )
    found = resources["ArtifactsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert {s["Effect"] for s in found} == {"Deny"}  # grants nothing: the roles do
    (deny,) = [s for s in found if s["Sid"] == "DenyInsecureTransport"]
    assert (deny["Principal"], deny["Action"]) == ("*", "s3:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_health_lists_only_the_model_names() -> None:
    (listing,) = statements(expanded_resources()["Health"])
    assert actions_of(listing) == ["s3:ListBucket"]
    assert listing["Condition"] == {
        "StringEquals": {
            "s3:prefix": "registry/models/",
            "s3:delimiter": "/",
        }
    }


def test_only_this_stack_s_rule_sends_only_this_bucket_s_inputs_to_the_batch_queues() -> None:
    resources = load_template()["Resources"]
    for policy, queue in [
        ("BatchQueuePolicy", "BatchQueue"),
        ("BatchDeadLetterQueuePolicy", "BatchDeadLetterQueue"),
    ]:
        (allow,) = resources[policy]["Properties"]["PolicyDocument"]["Statement"]
        assert allow["Principal"] == {"Service": "events.amazonaws.com"}
        assert (allow["Action"], allow["Resource"]) == (
            "sqs:SendMessage",
            {"Fn::GetAtt": [queue, "Arn"]},
        )
        assert allow["Condition"] == {
            "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["BatchInputRule", "Arn"]}}
        }
    pattern = resources["BatchInputRule"]["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"] == {"name": [{"Ref": "ArtifactsBucket"}]}


def test_bucket_outlives_the_stack_and_expires_old_versions_and_uploads() -> None:
    bucket = load_template()["Resources"]["ArtifactsBucket"]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-old-versions"]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": {"Ref": "NoncurrentVersionDays"}
    }
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 7
    }
    # Captured requests hold callers' data: they expire, and nothing else does by this rule.
    assert rules["expire-capture"] == {
        "Id": "expire-capture",
        "Status": "Enabled",
        "Prefix": "registry/capture/",
        "ExpirationInDays": {"Ref": "CaptureRetentionDays"},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
    }
    # Drift snapshots: one a minute per busy container, never read past a window: they expire.
    assert rules["expire-monitoring"] == {
        "Id": "expire-monitoring",
        "Status": "Enabled",
        "Prefix": "registry/monitoring/",
        "ExpirationInDays": {"Ref": "MonitoringRetentionDays"},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
    }
    assert load_template()["Parameters"]["MonitoringRetentionDays"]["Default"] == 90


LOG_DELIVERY = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


def test_the_state_machine_logs_errors_to_its_own_log_group_and_may_only_set_that_up() -> None:
    resources = load_template()["Resources"]
    machine = resources["BatchStateMachine"]
    assert machine["Properties"]["Logging"] == {
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
    logs = resources["BatchStateMachineLogs"]["Properties"]
    assert logs["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert logs["LogGroupName"] == {"Fn::Sub": "/aws/vendedlogs/states/${AWS::StackName}-batch"}
    found = statements(machine)
    anywhere = [s for s in found if "*" in resources_of(s)]
    assert [set(actions_of(s)) for s in anywhere] == [LOG_DELIVERY]  # nothing else on "*"
    assert all("*" not in a for s in found for a in actions_of(s))


def test_the_drift_job_reads_only_histograms_baselines_and_manifests_and_writes_nothing() -> None:
    """The manifests: a version's baseline is checked against the sha256 its manifest lists."""
    resources = expanded_resources()
    found = statements(resources["DriftJob"])
    assert {a for s in found for a in actions_of(s)} == {"s3:GetObject", "s3:ListBucket"}
    reads = [r for s in found if "s3:GetObject" in actions_of(s) for r in resources_of(s)]
    assert reads == [
        "arn:${AWS::Partition}:s3:::${ArtifactsBucket}/registry/monitoring/*",
        "arn:${AWS::Partition}:s3:::${ArtifactsBucket}/registry/models/*/drift_baseline.json",
        "arn:${AWS::Partition}:s3:::${ArtifactsBucket}/registry/models/*/manifest.json",
    ]
    listing = next(s for s in found if "s3:ListBucket" in actions_of(s))
    assert listing["Condition"] == {  # a missing baseline is a 404 (skipped), not a 403
        "StringLike": {
            "s3:prefix": [
                "registry/monitoring/*",
                "registry/models/*/drift_baseline.json",
                "registry/models/*/manifest.json",
            ]
        }
    }
    for model, logical in (("digits-mlp", "Predictdigitsmlp"), ("iris", "Predictiris")):
        alarm = resources[f"{logical}Drift"]["Properties"]
        assert alarm["MetricName"] == "aiaas_drift_max_psi"
        assert alarm["Dimensions"] == [{"Name": "model", "Value": model}]
        assert alarm["Threshold"] == {"Ref": "DriftPsiThreshold"}


BUCKET_ARN = "arn:${AWS::Partition}:s3:::${ArtifactsBucket}"
# The roles whose code reads the bucket through functions.runtime.s3store, which turns S3's 404
# into NotFound (a 404 naming the key, a version skipped, a record not there yet).
STORE_READERS = ("TrainingJobRole",)


def role_statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """A SAM function's policy statements, or an IAM role's inline ones."""
    return [
        s
        for policy in resource["Properties"].get("Policies", [])
        for s in policy.get("PolicyDocument", policy).get("Statement", [])
    ]


def listed_prefixes(found: list[dict[str, Any]]) -> list[str]:
    patterns: list[str] = []
    for s in found:
        if "s3:ListBucket" in actions_of(s):
            for condition in s["Condition"].values():
                prefix = condition["s3:prefix"]
                patterns += [prefix] if isinstance(prefix, str) else prefix
    return patterns


def test_every_key_a_function_reads_it_may_also_list_so_a_missing_one_is_a_404() -> None:
    """S3 answers a GET or HEAD of a missing key with 403 AccessDenied, not 404, unless the
    caller may list the bucket there. Every store read treats 404 as "not there" (a job's
    upload not found, a version without a drift baseline skipped, a data set path mistyped);
    a 403 was a 5xx "check the role's IAM policy" instead, or the hourly drift job stopped."""
    resources = expanded_resources()
    readers = [
        name
        for name, r in resources.items()
        if r["Type"] == "AWS::Serverless::Function" or name in STORE_READERS
    ]
    unlisted = {}
    for name in readers:
        found = role_statements(resources[name])
        listed = listed_prefixes(found)
        reads = [
            r.removeprefix(f"{BUCKET_ARN}/")
            for s in found
            if "s3:GetObject" in actions_of(s)
            for r in resources_of(s)
            if r.startswith(f"{BUCKET_ARN}/")
        ]
        # IAM's `*` matches any characters, '/' included, as fnmatch's does.
        missing = [r for r in reads if not any(fnmatch.fnmatchcase(r, p) for p in listed)]
        if missing:
            unlisted[name] = missing
    assert unlisted == {}


def test_roles_that_upload_big_files_in_parts_may_abort_them() -> None:
    """A file over 16 MB (a model, a batch output, a copied upload) goes up as a multipart
    upload that is aborted when it fails or loses its conditional write; a refused abort leaves
    the parts stored and billed until the bucket's 7-day rule."""
    resources = load_template()["Resources"]
    for name, prefix in [
        ("TrainingJobRole", "registry/models/*"),
        ("BatchFunction", "registry/batch/*"),
        ("ControlPlane", "registry/batch/*/input/*"),
    ]:
        found = role_statements(resources[name])
        aborts = {
            r for s in found if "s3:AbortMultipartUpload" in actions_of(s) for r in resources_of(s)
        }
        assert f"{BUCKET_ARN}/{prefix}" in aborts, name


def alarmed(resources: dict[str, Any], namespace: str, metric: str) -> set[str]:
    """Logical ids of the functions or state machines an alarm on `metric` watches."""
    found = set()
    for r in resources.values():
        if r["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = r["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        for m in [props, *stats]:
            if (m.get("Namespace"), m.get("MetricName")) == (namespace, metric):
                found |= {d["Value"]["Ref"] for d in m["Dimensions"] if "Ref" in d["Value"]}
    return found


def test_nothing_that_runs_without_a_caller_fails_without_an_alarm() -> None:
    """A function behind the API fails into a caller's 5xx (and Api5xxAlarm); one started by a
    schedule, a log subscription or a queue fails unseen, so its Errors alarm; one a state
    machine runs fails its execution, so the machine's failed-runs alarm."""
    resources = expanded_resources()
    machines = {n for n, r in resources.items() if r["Type"] == "AWS::Serverless::StateMachine"}
    callerless = {
        n
        for n, r in resources.items()
        if r["Type"] == "AWS::Serverless::Function"
        and any(e["Type"] != "HttpApi" for e in r["Properties"].get("Events", {}).values())
    }
    assert {"DriftJob", "BatchFunction"} <= callerless
    shadow_subscribed = {
        r["Properties"]["DestinationArn"]["Fn::GetAtt"][0]
        for r in resources.values()
        if r["Type"] == "AWS::Logs::SubscriptionFilter"
    }
    assert shadow_subscribed == {"ShadowFunction"}
    assert callerless | shadow_subscribed <= alarmed(resources, "AWS/Lambda", "Errors")
    assert machines <= alarmed(resources, "AWS/States", "ExecutionsFailed")
