"""An HTTP API deployed to a named stage (`prod`, not `$default`) puts the stage in `rawPath`:
`/prod/models/digits-mlp/predict`. The predict and health functions routed on the raw path, so
every route was a 404 there (the template's own `$default` stage does not, a stage added by a
user does)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from tests.functions.test_predict_events import (  # noqa: F401 - fixtures, used by name
    body_of,
    health_handler,
    load_event,
    predict_handler,
    published,
)


def staged(name: str, stage: str = "prod") -> dict[str, Any]:
    event = copy.deepcopy(load_event(name))
    event["rawPath"] = f"/{stage}{event['rawPath']}"
    event["requestContext"]["http"]["path"] = event["rawPath"]
    event["requestContext"]["stage"] = stage
    return event


def test_a_named_stage_s_prefix_is_not_part_of_the_route(
    predict_handler: Callable[..., Any],  # noqa: F811
    health_handler: Callable[..., Any],  # noqa: F811
) -> None:
    plain = predict_handler(load_event("predict_simple"), None)
    answer = predict_handler(staged("predict_simple"), None)
    assert answer["statusCode"] == 200, answer["body"]
    assert body_of(answer)["outputs"] == body_of(plain)["outputs"]
    assert health_handler(staged("health_live"), None)["statusCode"] == 200
    # A path under the stage's name that the API itself has is still routed as sent.
    unstaged = staged("predict_simple", "models")
    unstaged["requestContext"]["stage"] = "$default"
    assert predict_handler(unstaged, None)["statusCode"] == 404
