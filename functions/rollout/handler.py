"""Lambda entry point of the Rollout function (`functions.rollout.handler.handler`): the store
and the CloudWatch client are built once per container."""

from __future__ import annotations

import os
from typing import Any

from functions.rollout.service import dispatch
from functions.runtime.registry import Registry
from functions.runtime.rollout.cloudwatch import CloudWatchMetrics
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import open_store

SETTINGS = RuntimeSettings.from_env()
ENGINE = RolloutEngine(
    Registry(open_store(SETTINGS.store, SETTINGS.s3)), CloudWatchMetrics.from_env(os.environ)
)


def handler(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """A Step Functions task `{"aiaas_rollout": "check", "model", "alias"}`."""
    return dispatch(ENGINE, event)
