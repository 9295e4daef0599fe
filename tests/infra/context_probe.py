"""A handler that answers with the context object it was given (tests/infra/test_local_context.py)."""

from __future__ import annotations

import json
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    context.after_response(lambda: None)  # one job for after the response
    fields = {
        name: getattr(context, name)
        for name in (
            "function_name",
            "memory_limit_in_mb",
            "timeout_s",
            "aws_request_id",
            "invoked_function_arn",
            "serving",
        )
    }
    fields["remaining_ms"] = context.get_remaining_time_in_millis()
    return {"statusCode": 200, "body": json.dumps(fields)}
