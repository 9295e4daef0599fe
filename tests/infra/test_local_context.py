"""The context object `aiaas serve` gives a handler: Lambda's attributes, filled as Lambda fills
them for this function (its name, its Timeout, the event's request id), and the serve-only two
(`after_response`, `serving`) that the predict handler reads. Built from positional arguments
on the request path (infra/local/functions.py), so a field out of place shows here."""

from __future__ import annotations

import json
from collections.abc import Callable

from infra.local.functions import LocalFunction
from infra.template import FunctionSpec
from tests.functions.test_predict_events import http_event


def test_a_handler_gets_lambdas_context_filled_for_its_function_and_request() -> None:
    spec = FunctionSpec("Probe", "tests.infra.context_probe.handler", {}, properties={"Timeout": 7})
    event = http_event("GET", "/probe")
    event["requestContext"]["requestId"] = "req-42"
    jobs: list[Callable[[], None]] = []
    answer = LocalFunction(spec, {}).invoke(event, jobs.append)
    fields = json.loads(answer["body"])
    remaining = fields.pop("remaining_ms")
    assert fields == {
        "function_name": "Probe",
        "memory_limit_in_mb": 1024,
        "timeout_s": 7.0,
        "aws_request_id": "req-42",
        "invoked_function_arn": "",
        "serving": True,
    }
    assert 6000 < remaining <= 7000
    assert len(jobs) == 1  # after_response is the caller's `later`
