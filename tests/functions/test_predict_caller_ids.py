"""The caller's own ids on the predict function's lines, from events written by hand.

API Gateway sends every header value as a string; an event written by hand (a Lambda console
test event, `aiaas invoke -e`) may hold a number or a list. Such a value is no id: the request
is answered and its line written without it (reading it raised after the answer was built,
so the caller got an invocation error instead of its 200: review_rev3 1).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.local.functions import load_handler
from tests.functions.test_predict_events import MODEL, load_event, publish_digits

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


class _Held(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def handler(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    store, _ = publish_digits(tmp_path_factory.mktemp("caller_ids"))
    env = {
        "AIAAS_MODEL": MODEL,
        "AIAAS_MODEL_SELECTOR": "@production",
        "AIAAS_STORE": str(store),
        "AIAAS_CACHE_DIR": str(store.parent / "cache"),
        "AIAAS_LOG_REQUESTS": "true",
    }
    return load_handler("functions.predict.handler.handler", env)


@pytest.fixture()
def lines() -> Iterator[list[logging.LogRecord]]:
    held = _Held()
    logger = logging.getLogger("aiaas")  # the functions' loggers do not propagate to root
    logger.addHandler(held)
    try:
        yield held.records
    finally:
        logger.removeHandler(held)


def _request_line(records: list[logging.LogRecord]) -> logging.LogRecord:
    found = [r for r in records if r.getMessage() == "request"]
    assert len(found) == 1, [r.getMessage() for r in records]
    return found[0]


@pytest.mark.parametrize(
    "given",
    [
        {"x-request-id": 12345, "traceparent": ["00", TRACE]},
        {"x-request-id": ["a", "b"], "traceparent": 7},
        {"x-request-id": {"id": "x"}},
    ],
)
def test_a_hand_written_events_header_that_is_no_string_is_no_id(
    handler: Callable[..., Any], lines: list[logging.LogRecord], given: dict[str, Any]
) -> None:
    event = load_event("predict_simple")
    event["headers"].update(given)
    response = handler(event, None)
    assert response["statusCode"] == 200, response["body"]
    line = _request_line(lines)
    assert line.status == 200  # type: ignore[attr-defined]
    assert not hasattr(line, "caller_request_id") and not hasattr(line, "trace_id")


def test_string_ids_are_still_logged(
    handler: Callable[..., Any], lines: list[logging.LogRecord]
) -> None:
    event = load_event("predict_simple")
    event["headers"].update(
        {"x-request-id": "ingress-7", "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}
    )
    response = handler(event, None)
    assert response["statusCode"] == 200, response["body"]
    line = _request_line(lines)
    assert line.caller_request_id == "ingress-7"  # type: ignore[attr-defined]
    assert line.trace_id == TRACE  # type: ignore[attr-defined]
