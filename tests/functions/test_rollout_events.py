"""The Rollout function's input, as `aiaas invoke RolloutFunction -e EVENT` gives it on a laptop:
no AWS region set was boto3's NoRegionError before the event was read, and an event that is no
object an AttributeError. Both now say what to fix."""

from __future__ import annotations

from typing import Any

import pytest

from functions.rollout.service import dispatch
from functions.runtime.errors import BadRequest
from functions.runtime.rollout.cloudwatch import CloudWatchMetrics


def test_no_region_is_said_with_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    with pytest.raises(BadRequest, match="no AWS region is set: set AWS_REGION"):
        CloudWatchMetrics.from_env({})


@pytest.mark.parametrize(("event", "got"), [([1, 2], "list"), ("check", "str"), ({}, "keys []")])
def test_an_event_that_is_no_task_object_is_said_so(event: Any, got: str) -> None:
    with pytest.raises(BadRequest) as refused:
        dispatch(None, event)  # type: ignore[arg-type]
    assert refused.value.message.endswith(f"; got {got}")
