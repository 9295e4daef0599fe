"""The artifacts bucket's retentions free the bytes they name, in a versioned bucket."""

from __future__ import annotations

from infra.template import load_template


def test_what_a_retention_expires_is_gone_a_day_later_not_noncurrent_version_days() -> None:
    """The bucket is versioned: an expiry only puts a delete marker on top, and the bytes stay
    as an old version until a noncurrent rule removes them. Captured requests (callers' data)
    stayed CaptureRetentionDays + NoncurrentVersionDays (30 + 30 by default), not the
    CaptureRetentionDays the parameter names; S3 honours the shorter of two overlapping
    expirations, so each retention's own one-day rule wins over expire-old-versions."""
    bucket = load_template()["Resources"]["ArtifactsBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    expiring = [r for r in bucket["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r]
    assert {r["Id"] for r in expiring} == {"expire-capture", "expire-monitoring"}
    for rule in expiring:
        assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}, rule["Id"]
