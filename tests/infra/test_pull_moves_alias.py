"""`aiaas pull` from a staging store into prod: moving an alias it says what `aiaas promote` says
of a move, what the alias served before and the rollout the move supersedes (hunt_journey3 3);
a version name prod pruned is refused naming the ways on (hunt_journey3 5).

Before, pulling a staging store's `churn@production` into a prod store whose production was a
rollout's 50% split printed only `churn@production -> cand-7`: the split it replaced and the
rollout its move ended (superseded at the driver's next check) went unsaid, where a promote
names both. Two S3 stores on moto's server, as a staging and a prod registry.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.manifest import utc_now
from functions.runtime.registry import Registry
from functions.runtime.rollout.record import RolloutBook, RolloutPlan, RolloutRecord
from functions.runtime.s3store import S3Store
from tests.infra.test_cli_registry import run
from tests.publishing import publish_linear


def test_a_pull_that_moves_a_split_alias_under_a_rollout_says_so(
    capsys: pytest.CaptureFixture[str], s3_bucket: str, tmp_path: Path
) -> None:
    staging, prod = S3Store(s3_bucket, "staging"), S3Store(s3_bucket, "prod")
    publish_linear(Registry(staging), tmp_path, "churn", "cand-7")
    Registry(staging).set_alias("churn", "production", "cand-7")
    for version in ("1", "2"):
        publish_linear(Registry(prod), tmp_path, "churn", version)
    Registry(prod).set_alias("churn", "production", "1")
    Registry(prod).set_alias("churn", "production", "2", weight=0.5)
    plan = RolloutPlan(steps=(0.5, 1.0), bake_s=60, max_error_rate=0.01)
    running = RolloutRecord("r1", "churn", "production", "1", "2", plan, utc_now(), "ci")
    RolloutBook(prod).update("churn", "production", lambda _: running)

    code, out, err = run(capsys, prod, "pull", "churn@production", "--from", staging.uri)
    assert code == 0, err
    assert out.splitlines()[-1] == "churn@production -> cand-7 (was 1 (50%) + 2 (50%))"
    assert (
        "note: the rollout of churn@production (1 -> 2, by ci) was running: its driver's next "
        "check ends it as superseded"
    ) in err
    # Pulled again: the alias already is so, and the pull says that, as promote does.
    code, out, err = run(capsys, prod, "pull", "churn@production", "--from", staging.uri)
    assert (code, out.splitlines()[-1]) == (
        0, "churn@production -> cand-7 (unchanged: it already was; nothing recorded)"
    )  # fmt: skip


def test_a_pull_of_a_version_name_pruned_here_names_the_ways_on(
    capsys: pytest.CaptureFixture[str], s3_bucket: str, tmp_path: Path
) -> None:
    """Staging and prod both number from 1: staging's churn:1 pulled into a prod that pruned
    its own churn:1 was refused with no next step (hunt_journey3 5)."""
    staging, prod = S3Store(s3_bucket, "staging"), S3Store(s3_bucket, "prod")
    publish_linear(Registry(staging), tmp_path, "churn", "1")
    for version in ("1", "2"):
        publish_linear(Registry(prod), tmp_path, "churn", version)
    Registry(prod).set_alias("churn", "production", "2")
    assert run(capsys, prod, "prune", "churn", "--keep", "1", "--yes")[0] == 0

    code, out, err = run(capsys, prod, "pull", "churn:1", "--from", staging.uri)
    assert (code, out) == (1, "")
    assert err.startswith(f"aiaas pull: error: churn:1 was published and pruned in {prod.uri}")
    assert "nothing was copied and no alias moved" in err
    assert "Publish the model there as a new version (`aiaas publish FILE --name churn`" in err
    assert Registry(prod).versions("churn") == ["2"]


def test_a_pulled_version_s_alias_history_says_where_it_came_from(
    capsys: pytest.CaptureFixture[str], s3_bucket: str, tmp_path: Path
) -> None:
    """Promoted from staging to prod by pull: prod's history said who and when, not that the
    version came from staging (a version of the same name may be published in either). The
    move's reason now names the source store and version, as `aiaas versions` shows it."""
    staging, prod = S3Store(s3_bucket, "staging"), S3Store(s3_bucket, "prod")
    publish_linear(Registry(staging), tmp_path, "churn", "cand-7")
    Registry(staging).set_alias("churn", "production", "cand-7")
    code, _, err = run(capsys, prod, "pull", "churn@production", "--from", staging.uri)
    assert code == 0, err
    record = Registry(prod).alias_record("churn", "production")
    assert record is not None
    # Before: no reason (None).
    assert record["reason"] == f"pulled churn:cand-7 from {staging.uri}"
    code, out, _ = run(capsys, prod, "versions", "churn")
    assert f"cand-7; why: pulled churn:cand-7 from {staging.uri}" in out
