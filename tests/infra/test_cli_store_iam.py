"""What `aiaas` says when S3 takes the credentials but a policy refuses one action, or refuses
the credentials themselves: moto's server enforcing IAM (hunt_s3ux 5, 6)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from infra.cli.main import main
from tests.onnx_factory import linear_classifier
from tests.s3server import MotoServer

BUCKET = "aiaas-iam"
# Requests moto answers before it enforces IAM: the setup below, exactly.
SETUP_REQUESTS = 7
NO_LIST = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]  # a policy missing s3:ListBucket


@pytest.fixture(scope="module")
def iam_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[str, str]]]:
    """A moto server enforcing IAM once set up: {user: (key id, secret)} of `full` (s3:*) and
    `nolist` (NO_LIST)."""
    server = MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS)})
    server.start(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        clients = {"endpoint_url": server.endpoint, "region_name": "us-east-1"}
        keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        s3 = boto3.client("s3", **clients, **keys)  # type: ignore[call-overload]
        iam = boto3.client("iam", **clients, **keys)  # type: ignore[call-overload]
        s3.create_bucket(Bucket=BUCKET)
        users = {}
        for user, actions in (("full", ["s3:*"]), ("nolist", NO_LIST)):
            iam.create_user(UserName=user)
            statement = {"Effect": "Allow", "Action": actions, "Resource": "*"}
            document = {"Version": "2012-10-17", "Statement": [statement]}
            iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(document))
        for user in ("full", "nolist"):
            key = iam.create_access_key(UserName=user)["AccessKey"]
            users[user] = (key["AccessKeyId"], key["SecretAccessKey"])
        users["endpoint"] = (server.endpoint, "")
        yield users
    finally:
        server.stop()


def _as(monkeypatch: pytest.MonkeyPatch, users: dict[str, tuple[str, str]], user: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", users["endpoint"][0])
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", users[user][0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", users[user][1])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


def test_a_denied_listing_names_the_action_to_grant(
    iam_server: dict[str, tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _as(monkeypatch, iam_server, "nolist")
    assert main(["--store", f"s3://{BUCKET}/registry", "models"]) == 1
    assert capsys.readouterr().err == (
        f"aiaas models: error: S3 refused access to s3://{BUCKET}/registry/models "
        "(AccessDenied): check the credentials, the role's IAM policy and the bucket policy; "
        f"ListObjectsV2 needs s3:ListBucket on arn:aws:s3:::{BUCKET}\n"
    )


def test_a_denied_head_of_a_missing_object_says_why_it_is_403(
    iam_server: dict[str, tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    _as(monkeypatch, iam_server, "nolist")
    model = linear_classifier(tmp_path / "model.onnx")
    argv = ["--store", f"s3://{BUCKET}/registry", "publish", str(model), "--name", "m"]
    assert main([*argv, "--version", "7"]) == 1
    key = f"{BUCKET}/registry/models/m/versions/7/manifest.json"
    assert capsys.readouterr().err == (
        f"aiaas publish: error: S3 refused access to s3://{key} (403): check the credentials, "
        f"the role's IAM policy and the bucket policy; HeadObject needs s3:GetObject on "
        f"arn:aws:s3:::{key} (and S3 answers 403, not 404, for a missing object to a caller "
        f"without s3:ListBucket on arn:aws:s3:::{BUCKET})\n"
    )
    _as(monkeypatch, iam_server, "full")
    assert main(["--store", f"s3://{BUCKET}/registry", "models", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"] == []  # nothing half-written


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            {"AWS_SECRET_ACCESS_KEY": "not-the-secret"},
            "(SignatureDoesNotMatch): the secret key is not this access key's: check "
            "AWS_SECRET_ACCESS_KEY (or the profile's aws_secret_access_key)",
        ),
        (
            {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE"},
            "(InvalidAccessKeyId): S3 does not know this access key (deleted, another "
            "account's, or for another endpoint): check AWS_ACCESS_KEY_ID or AWS_PROFILE",
        ),
        (
            {"AWS_SESSION_TOKEN": "a-stale-token"},
            "(InvalidToken): the session token is not this access key's or is cut short: "
            "check AWS_SESSION_TOKEN, or log in again",
        ),
    ],
)
def test_refused_credentials_say_which_to_fix(
    iam_server: dict[str, tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    said: str,
) -> None:
    _as(monkeypatch, iam_server, "full")
    for name, value in change.items():
        monkeypatch.setenv(name, value)
    assert main(["--store", f"s3://{BUCKET}/registry", "versions", "m"]) == 1
    assert capsys.readouterr().err == (
        f"aiaas versions: error: S3 refused the credentials used for s3://{BUCKET}/registry {said}\n"
    )
