"""Least privilege in template.yaml: each predict function reads only its own model, batch
writes only under batch/, the control plane only aliases and batch inputs, and the bucket is
private, versioned, encrypted and refuses plain HTTP."""

from __future__ import annotations

from typing import Any

from infra.template import load_template, parameter_defaults
from tests.infra.language_extensions import expand

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
    template = load_template()
    values = {**parameter_defaults(template), "ModelNames": MODELS}
    return expand(template, values)["Resources"]  # type: ignore[no-any-return]


def test_a_predict_function_reads_only_its_own_model() -> None:
    resources = expanded_resources()
    for model, logical in (("digits-mlp", "Predictdigitsmlp"), ("iris", "Predictiris")):
        found = statements(resources[logical])
        assert all("*" not in a for s in found for a in actions_of(s))
        assert {a for s in found for a in actions_of(s)} == {"s3:GetObject", "s3:ListBucket"}
        reads = [r for s in found if "s3:GetObject" in actions_of(s) for r in resources_of(s)]
        assert reads == [
            f"arn:${{AWS::Partition}}:s3:::${{ArtifactsBucket}}/${{RegistryPrefix}}/models/{model}/*"
        ]
        listing = next(s for s in found if "s3:ListBucket" in actions_of(s))
        assert listing["Condition"] == {
            "StringLike": {"s3:prefix": {"Fn::Sub": f"${{RegistryPrefix}}/models/{model}/*"}}
        }


def test_batch_writes_only_under_batch() -> None:
    found = statements(expanded_resources()["BatchFunction"])
    writes = [
        r
        for s in found
        for r in resources_of(s)
        if {"s3:PutObject", "s3:DeleteObject"} & set(actions_of(s))
    ]
    assert writes and all(r.endswith("/${RegistryPrefix}/batch/*") for r in writes)
    assert all("*" not in a for s in found for a in actions_of(s))


def test_control_plane_writes_only_aliases_and_batch_inputs() -> None:
    found = statements(expanded_resources()["ControlPlane"])
    writes = sorted(
        r
        for s in found
        for r in resources_of(s)
        if {"s3:PutObject", "s3:DeleteObject"} & set(actions_of(s))
    )
    assert [w.split("${RegistryPrefix}/", 1)[1] for w in writes] == [
        "batch/*/input/*",
        "models/*/aliases/*",
    ]


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
    (deny,) = resources["ArtifactsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
