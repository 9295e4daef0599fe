"""The GPU training instances in template.yaml: instance metadata only to IMDSv2 sessions of
the instance itself (not the job's container), and their disks encrypted."""

from __future__ import annotations

from infra.template import load_template


def test_training_instances_answer_metadata_only_to_imdsv2_sessions() -> None:
    """IMDSv1 answers a single unauthenticated GET: an SSRF in anything on a GPU instance
    would hand out the instance role's credentials (Security Hub EC2.8, checkov CKV_AWS_79).
    Batch launches its instances from this launch template. Hop limit 1: the job's container
    (bridge network, one hop further) gets no IMDSv2 session, so the user's code and its
    packages have the job role only, not the instance role's logs:PutLogEvents and ECR reads
    on `*` (at 2 it could take them, hunt_security 2); its region comes from the job
    definition instead of instance metadata."""
    resources = load_template()["Resources"]
    compute = resources["TrainingComputeEnvironment"]["Properties"]["ComputeResources"]
    assert compute["LaunchTemplate"] == {
        "LaunchTemplateId": {"Ref": "TrainingLaunchTemplate"},
        "Version": {"Fn::GetAtt": ["TrainingLaunchTemplate", "LatestVersionNumber"]},
    }
    launch = resources["TrainingLaunchTemplate"]
    assert launch["Condition"] == "TrainingEnabled"
    assert launch["Properties"]["LaunchTemplateData"]["MetadataOptions"] == {
        "HttpEndpoint": "enabled",
        "HttpTokens": "required",
        "HttpPutResponseHopLimit": 1,
    }
    container = resources["TrainingJobDefinition"]["Properties"]["ContainerProperties"]
    environment = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert environment["AWS_REGION"] == environment["AWS_DEFAULT_REGION"] == {"Ref": "AWS::Region"}


def test_training_instances_disks_are_encrypted_whatever_the_account_default() -> None:
    """EBS encryption by default is an account setting, off unless someone turned it on; the
    GPU instances' root volume (the ECS AMI's /dev/xvda) holds the training image, the job's
    data set and its checkpoints (Security Hub EC2.7)."""
    launch = load_template()["Resources"]["TrainingLaunchTemplate"]["Properties"]
    (root,) = launch["LaunchTemplateData"]["BlockDeviceMappings"]
    assert root["DeviceName"] == "/dev/xvda"
    assert root["Ebs"]["Encrypted"] is True
    assert "VolumeSize" not in root["Ebs"]  # the AMI's own: never below its snapshot
