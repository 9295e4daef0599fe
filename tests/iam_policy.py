"""IAM, as far as this stack's policies use it, for checking real requests against them.

IAM cannot run here, so this is the one in-process stand-in: the requests come from a real
moto server's recording (`MOTO_ENABLE_RECORDING`), each is turned into the action, resource and
condition keys S3 (or Step Functions, CloudWatch) authorizes it by, and the template's role and
bucket policy statements are evaluated as IAM does (an explicit Deny wins; else any Allow). A
request, condition operator or principal this module does not know fails loudly rather than
being guessed; a condition key the request does not carry is absent, as in IAM."""

from __future__ import annotations

import base64
import fnmatch
import html
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PARTITION, REGION, ACCOUNT, STACK = "aws", "us-east-1", "123456789012", "aiaas"  # moto's account
TLS = {"aws:SecureTransport": "true"}  # as the deployed functions call S3 (HTTPS)


@dataclass(frozen=True)
class S3Request:
    """One API call as IAM sees it (S3's, mostly)."""

    action: str  # e.g. s3:PutObject
    resource: str  # arn:aws:s3:::bucket[/key]
    context: Mapping[str, str] = field(default_factory=dict)  # condition keys present
    call: str = ""  # what was sent, for messages: "PUT /bucket/key (UploadPart)"


def recorded(path: Path) -> list[dict[str, Any]]:
    """moto's recording: one JSON object per request (method, url, headers, body)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def s3_requests(entry: Mapping[str, Any]) -> list[S3Request]:
    """Every authorization one recorded request needs: a copy also reads its source, and a
    `DeleteObjects` deletes each key it names. A call of another service on the same server
    (a JSON-protocol `X-Amz-Target`) is that service's action on the resource it names."""
    headers = {k.lower(): v for k, v in entry["headers"].items()}
    if entry["method"].upper() == "HEAD" and urlsplit(entry["url"]).path == "/":
        # The CLI's first contact with an endpoint the user set (functions/runtime/s3probe.py):
        # unsigned, no bucket, no IAM action (AWS's own endpoint is never probed).
        assert "authorization" not in headers, entry
        return []
    target = headers.get("x-amz-target", "")
    if target:
        return [other_service(target, entry)]
    url = urlsplit(entry["url"])
    bucket, _, key = unquote(url.path).lstrip("/").partition("/")
    query = parse_qs(url.query, keep_blank_values=True)
    if entry["method"].upper() == "POST" and not key and "delete" in query:
        body = base64.b64decode(entry["body"]) if entry.get("body_encoded") else entry["body"]
        keys = re.findall(r"<Key>(.*?)</Key>", body.decode() if isinstance(body, bytes) else body)
        where = f"arn:{PARTITION}:s3:::{bucket}"
        return [
            S3Request("s3:DeleteObject", f"{where}/{html.unescape(k)}", TLS, f"DeleteObjects {k}")
            for k in keys
        ]
    found = [s3_request(entry)]
    headers = {k.lower(): v for k, v in entry["headers"].items()}
    if "x-amz-copy-source" in headers:
        source = unquote(headers["x-amz-copy-source"].split("?versionId=")[0]).lstrip("/")
        found.append(
            S3Request("s3:GetObject", f"arn:{PARTITION}:s3:::{source}", TLS, "copy source")
        )
    return found


SERVICES = {"AWSStepFunctions": "states", "GraniteServiceVersion20100801": "cloudwatch"}


def other_service(target: str, entry: Mapping[str, Any]) -> S3Request:
    """`states:StartExecution` on its state machine's ARN, `cloudwatch:GetMetricData` on "*"
    (it takes no resource): the services the stack's functions call besides S3."""
    prefix, _, operation = target.partition(".")
    if prefix not in SERVICES:
        raise ValueError(f"no IAM mapping for X-Amz-Target {target}")
    named = "*"
    if SERVICES[prefix] == "states":
        body = base64.b64decode(entry["body"]) if entry.get("body_encoded") else entry["body"]
        sent = json.loads(body or "{}")
        named = sent.get("stateMachineArn") or sent.get("executionArn", "*")
    return S3Request(f"{SERVICES[prefix]}:{operation}", named, dict(TLS), target)


def s3_request(entry: Mapping[str, Any]) -> S3Request:
    """The S3 operation of one recorded path-style request, as IAM authorizes it. Condition
    keys: `aws:SecureTransport` is "true" (the deployed functions call S3's HTTPS endpoint;
    the bucket policy refuses anything else), and for writes `s3:ObjectCreationOperation`,
    with `s3:if-none-match` / `s3:if-match` when their headers were sent."""
    url = urlsplit(entry["url"])
    bucket, _, key = unquote(url.path).lstrip("/").partition("/")
    query = parse_qs(url.query, keep_blank_values=True)
    headers = {k.lower(): v for k, v in entry["headers"].items()}
    method = entry["method"].upper()
    context = dict(TLS)
    for header in ("if-none-match", "if-match"):
        if header in headers and method in ("PUT", "POST"):
            context[f"s3:{header}"] = headers[header]

    def write(operation: str, creates: bool) -> S3Request:
        context["s3:ObjectCreationOperation"] = str(creates).lower()
        return S3Request("s3:PutObject", object_arn, context, f"{method} {where} ({operation})")

    bucket_arn = f"arn:{PARTITION}:s3:::{bucket}"
    object_arn = f"{bucket_arn}/{key}"
    where = f"/{bucket}/{key}"
    if not key:
        if method == "GET" and "list-type" in query:
            for name in ("prefix", "delimiter", "max-keys"):  # the keys IAM gives a listing
                if name in query:
                    context[f"s3:{name}"] = query[name][0]
            return S3Request("s3:ListBucket", bucket_arn, context, f"GET {where} (ListObjectsV2)")
        raise ValueError(f"no IAM mapping for a bucket-level {method} {entry['url']}")
    if method in ("GET", "HEAD"):
        return S3Request("s3:GetObject", object_arn, context, f"{method} {where}")
    if method == "PUT" and "partNumber" in query:
        copied = "x-amz-copy-source" in headers
        return write("UploadPartCopy" if copied else "UploadPart", creates=False)
    if method == "PUT" and "x-amz-copy-source" in headers:
        return write("CopyObject", creates=True)
    if method == "PUT":
        return write("PutObject", creates=True)
    if method == "POST" and "uploads" in query:
        return write("CreateMultipartUpload", creates=False)
    if method == "POST" and "uploadId" in query:
        return write("CompleteMultipartUpload", creates=True)
    if method == "DELETE" and "uploadId" in query:
        return S3Request("s3:AbortMultipartUpload", object_arn, context, f"DELETE {where} (abort)")
    if method == "DELETE":
        return S3Request("s3:DeleteObject", object_arn, context, f"DELETE {where}")
    raise ValueError(f"no IAM mapping for {method} {entry['url']}")


def resolved(value: Any, bucket: str) -> str:
    """A template resource ARN (`!Sub`, `!GetAtt ArtifactsBucket.Arn`) for the named bucket."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        assert value["Fn::GetAtt"] == ["ArtifactsBucket", "Arn"], value
        return f"arn:{PARTITION}:s3:::{bucket}"
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    for name, replacement in {
        "${AWS::Partition}": PARTITION,
        "${AWS::Region}": REGION,
        "${AWS::AccountId}": ACCOUNT,
        "${AWS::StackName}": STACK,
        "${ArtifactsBucket.Arn}": f"arn:{PARTITION}:s3:::{bucket}",
        "${ArtifactsBucket}": bucket,
    }.items():
        text = text.replace(name, replacement)
    assert "${" not in text, f"unresolved: {text}"
    return str(text)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _condition_holds(operator: str, key: str, wanted: Any, context: Mapping[str, str]) -> bool:
    present = key in context
    values = [str(v) for v in _listed(wanted)]
    if operator == "Null":  # "true": the key is absent
        return any((v.lower() == "true") != present for v in values)
    if not present:
        return False  # a key absent matches no other operator (no ...IfExists used here)
    found = context[key]
    if operator == "Bool":
        return found.lower() in (v.lower() for v in values)
    if operator == "StringEquals":
        return found in values
    if operator == "StringLike":
        return any(fnmatch.fnmatchcase(found, v) for v in values)
    raise AssertionError(f"condition operator {operator} is not modelled in tests/iam_policy.py")


def _applies(statement: Mapping[str, Any], request: S3Request, bucket: str) -> bool:
    actions = [a.lower() for a in _listed(statement["Action"])]
    if not any(fnmatch.fnmatchcase(request.action.lower(), a) for a in actions):
        return False
    # IAM's `*` matches any characters, '/' included, as fnmatch's does.
    resources = [resolved(r, bucket) for r in _listed(statement["Resource"])]
    if not any(fnmatch.fnmatchcase(request.resource, r) for r in resources):
        return False
    principal = statement.get("Principal", "*")
    assert principal == "*", f"principal {principal} is not modelled in tests/iam_policy.py"
    return all(
        _condition_holds(operator, key, wanted, request.context)
        for operator, keys in statement.get("Condition", {}).items()
        for key, wanted in keys.items()
    )


def decision(request: S3Request, statements: Iterable[Mapping[str, Any]], bucket: str) -> str:
    """ "deny" (an explicit Deny applies), "allow" (an Allow applies) or "implicit deny", over
    the role's statements and the bucket policy's together (one account: either may allow)."""
    found = [s for s in statements if _applies(s, request, bucket)]
    if any(s["Effect"] == "Deny" for s in found):
        return "deny"
    return "allow" if found else "implicit deny"


def write(bucket: str, key: str, *, operation: str = "PutObject", **headers: str) -> S3Request:
    """A write the recording did not make, to check what the policies refuse: `headers` as
    if_none_match="*" or if_match='"etag"'."""
    sent = {name.replace("_", "-"): value for name, value in headers.items()}
    query = {
        "PutObject": "",
        "CopyObject": "",
        "UploadPart": "?partNumber=1&uploadId=u",
        "CreateMultipartUpload": "?uploads",
        "CompleteMultipartUpload": "?uploadId=u",
    }[operation]
    if operation == "CopyObject":
        sent["x-amz-copy-source"] = f"/{bucket}/elsewhere"
    method = "POST" if operation in ("CreateMultipartUpload", "CompleteMultipartUpload") else "PUT"
    return s3_request(
        {"method": method, "url": f"http://s3/{bucket}/{key}{query}", "headers": sent}
    )
