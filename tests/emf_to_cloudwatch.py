"""What CloudWatch Logs does with an EMF line, for tests: each metric of the document goes to
PutMetricData once per dimension set, under the document's timestamp and unit (a list of
values is sent as Values). Run against moto's CloudWatch on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any


def emf_metric_data(document: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(namespace, MetricData) pairs of one EMF document."""
    stamp = datetime.fromtimestamp(document["_aws"]["Timestamp"] / 1000, UTC)
    out = []
    for directive in document["_aws"]["CloudWatchMetrics"]:
        data = []
        for dimensions in directive["Dimensions"]:
            dims = [{"Name": n, "Value": str(document[n])} for n in dimensions]
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                values = value if isinstance(value, list) else [value]
                datum = {"MetricName": metric["Name"], "Dimensions": dims, "Timestamp": stamp}
                datum.update({"Values": [float(v) for v in values], "Unit": metric["Unit"]})
                data.append(datum)
        out.append((directive["Namespace"], data))
    return out


def put_emf(client: Any, lines: Iterable[str]) -> int:
    """PutMetricData for every EMF line in `lines` (other log lines skipped); the count sent."""
    sent = 0
    for line in lines:
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        for namespace, data in emf_metric_data(json.loads(line)):
            for start in range(0, len(data), 20):  # a call takes at most 20 data
                client.put_metric_data(Namespace=namespace, MetricData=data[start : start + 20])
            sent += 1
    return sent
