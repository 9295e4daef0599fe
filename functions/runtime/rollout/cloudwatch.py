"""A rollout's metrics from CloudWatch: the predict functions' EMF metrics, per version.

The EMF documents (functions/predict/telemetry.py) carry `model`, `alias` and `version`
dimensions: requests and latency per [model, alias, version], 5xx and 4xx per [model, alias,
version, status_class], and the shadow's comparisons per [model, version, shadow_version]. `alias` is
the alias whose split routed a request ('-' when pinned to a version), so a rollout reads only
its own alias's routed requests: not pinned ones, nor another stack's serving the same version. One GetMetricData call reads a
window's sums and the p99 of both versions. CloudWatch keeps these at one-minute resolution,
so a window is read from the start of the minute it began in (a step's first minute may
include the previous step's requests of the same versions).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from functions.predict.metric_names import (
    LATENCY,
    REQUESTS,
    SHADOW_AGREED,
    SHADOW_BY_INDEX,
    SHADOW_ERRORS,
    SHADOW_REQUESTS,
    SHADOW_ROWS,
)
from functions.runtime.errors import BadRequest, ServiceUnavailable
from functions.runtime.refs import DEFAULT_ALIAS
from functions.runtime.rollout.decision import ShadowStats, StepMetrics, VersionStats

MINUTE = 60


class CloudWatchMetrics:
    """The `MetricsSource` of functions/runtime/rollout over CloudWatch GetMetricData."""

    def __init__(self, client: Any, namespace: str = "aiaas", latency_stat: str = "p99") -> None:
        self.client = client
        self.namespace = namespace
        # p99 in AWS; a test server without percentiles (moto) is read with "Maximum", an
        # upper bound of it.
        self.latency_stat = latency_stat

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CloudWatchMetrics:
        """A client from the usual AWS settings; `POWERTOOLS_METRICS_NAMESPACE` (aiaas). With no
        region set (Lambda always sets one; `aiaas invoke` on a laptop may not), a BadRequest
        saying so, where boto3's NoRegionError came before the event was read."""
        import boto3
        from botocore.exceptions import NoRegionError

        try:
            client = boto3.client("cloudwatch")
        except NoRegionError:
            raise BadRequest(
                "the rollout checks read CloudWatch, and no AWS region is set: set AWS_REGION "
                "(AWS_DEFAULT_REGION) to the stack's region"
            ) from None
        return cls(client, env.get("POWERTOOLS_METRICS_NAMESPACE", "aiaas"))

    def begin(self, model: str, since: float) -> None:
        return None  # CloudWatch windows by time itself

    def measure(
        self, model: str, baseline: str, candidate: str, since: float, alias: str = DEFAULT_ALIAS
    ) -> StepMetrics:
        start = math.floor(since / MINUTE) * MINUTE
        end = (math.floor(self._now() / MINUTE) + 1) * MINUTE
        period = end - start
        queries = [
            *self._version_queries(
                "b", {"model": model, "alias": alias, "version": baseline}, period
            ),
            *self._version_queries(
                "c", {"model": model, "alias": alias, "version": candidate}, period
            ),
            *self._shadow_queries(model, baseline, candidate, period),
        ]
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.get_metric_data(
                MetricDataQueries=queries,
                StartTime=datetime.fromtimestamp(start, UTC),
                EndTime=datetime.fromtimestamp(end, UTC),
            )
        except (BotoCoreError, ClientError) as exc:
            # One error name the state machine retries (a Lambda's error is its class name,
            # matched exactly): botocore's own (EndpointConnectionError, ClientError for a
            # throttle) aborted the rollout at the first failing check, not after ~6 minutes.
            raise ServiceUnavailable(f"CloudWatch GetMetricData failed: {exc}") from exc
        values = {
            r["Id"]: [float(v) for v in r.get("Values", [])] for r in answer["MetricDataResults"]
        }
        return StepMetrics(
            baseline=_version(values, "b"),
            candidate=_version(values, "c"),
            shadow=ShadowStats(
                copies=sum(values.get("scopies", [])),
                errors=sum(values.get("serrors", [])),
                rows=sum(values.get("srows", [])),
                agreed=sum(values["sagreed"]) if values.get("sagreed") else None,
                by_index=sum(values.get("sindex", [])),
            ),
        )

    def _now(self) -> float:
        return datetime.now(UTC).timestamp()

    def _query(
        self, key: str, name: str, dimensions: dict[str, str], stat: str, period: int
    ) -> dict[str, Any]:
        metric = {
            "Namespace": self.namespace,
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        }
        return {"Id": key, "MetricStat": {"Metric": metric, "Period": period, "Stat": stat}}

    def _version_queries(
        self, prefix: str, dims: dict[str, str], period: int
    ) -> list[dict[str, Any]]:
        return [
            self._query(f"{prefix}requests", REQUESTS, dims, "Sum", period),
            self._query(
                f"{prefix}errors", REQUESTS, {**dims, "status_class": "5xx"}, "Sum", period
            ),
            self._query(f"{prefix}p99", LATENCY, dims, self.latency_stat, period),
            self._query(  # judged against the other version's (decision.py `_refused_more`)
                f"{prefix}refused", REQUESTS, {**dims, "status_class": "4xx"}, "Sum", period
            ),
        ]

    def _shadow_queries(
        self, model: str, baseline: str, candidate: str, period: int
    ) -> list[dict[str, Any]]:
        dims = {"model": model, "version": baseline, "shadow_version": candidate}
        names = {"scopies": SHADOW_REQUESTS, "serrors": SHADOW_ERRORS, "srows": SHADOW_ROWS}
        names.update(sagreed=SHADOW_AGREED, sindex=SHADOW_BY_INDEX)
        return [self._query(key, name, dims, "Sum", period) for key, name in names.items()]


def _version(values: Mapping[str, list[float]], prefix: str) -> VersionStats:
    p99 = values.get(f"{prefix}p99") or []
    return VersionStats(
        requests=sum(values.get(f"{prefix}requests", [])),
        errors=sum(values.get(f"{prefix}errors", [])),
        p99_ms=max(p99) * 1000 if p99 else None,  # seconds in EMF
        client_errors=sum(values.get(f"{prefix}refused", [])),
    )
