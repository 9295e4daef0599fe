"""The rollout state machine walked as in test_rollout_state_machine.py (the real Rollout
function code, moto's S3 and CloudWatch) while a person moves the alias by hand during a check:
the check's rollback was unconditional and put back the baseline over the person's promote."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from functions.runtime.registry import Registry
from functions.runtime.rollout.cloudwatch import CloudWatchMetrics
from functions.runtime.rollout.decision import StepMetrics
from functions.runtime.s3store import S3Store
from tests.functions.test_rollout_state_machine import cloudwatch, setup

__all__ = ["cloudwatch"]  # the fixture, used by name


class MovedWhileMeasured:
    """CloudWatch as the function reads it, a person moving the alias by hand while the check
    that sees the candidate's errors waits for GetMetricData (seconds in AWS)."""

    def __init__(self, source: CloudWatchMetrics, move: Callable[[], None]) -> None:
        self.source, self.move = source, move
        self.moved = False

    def begin(self, model: str, since: float) -> None:
        self.source.begin(model, since)

    def measure(self, *args: Any, **kwargs: Any) -> StepMetrics:
        metrics = self.source.measure(*args, **kwargs)
        if metrics.candidate.errors and not self.moved:
            self.move()
            self.moved = True
        return metrics


def test_a_promote_by_hand_while_a_check_measures_stops_the_machine(
    s3_store: S3Store, tmp_path: Path, cloudwatch: Any
) -> None:
    walker, model = setup(s3_store, tmp_path, cloudwatch, "nan")
    source = walker.engine.source
    assert isinstance(source, CloudWatchMetrics)

    def promote() -> None:
        Registry(s3_store).set_alias(model, "production", "2", actor="alice")

    walker.engine.source = MovedWhileMeasured(source, promote)
    end, output = walker.run(walker.started)
    # Before: RolledBack, the alias back on 1 over alice's promote.
    assert end == "Stopped", walker.states
    assert output["state"] == "superseded", output
    assert output["reason"].startswith("the alias was moved outside the rollout (it serves 2)")
    assert "its check had decided to roll back: error rate" in output["reason"]
    record = Registry(s3_store).alias_record(model, "production")
    assert record is not None and record["updated_by"] == "alice"
