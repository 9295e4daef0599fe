"""Captured requests are write-once for the predict function that captures them.

The capture writer sends every object with If-None-Match (functions/runtime/capture/buffer.py),
and the docs promised "new objects" only; the role allowed any PutObject under the model's
capture prefix, so a bug or anything running in the function could replace lines already
captured (what `aiaas compare` and the export read back). The role now requires the header."""

from __future__ import annotations

import pytest

from tests.iam_policy import decision, write
from tests.role_requests import BUCKET, statements

CAPTURED = "registry/capture/digits-mlp/1/2026-12-07/080000-0a1b2c3d4e5f-1.jsonl"


@pytest.mark.parametrize(
    ("key", "headers", "expected"),
    [
        (CAPTURED, {"if_none_match": "*"}, "allow"),  # what the capture writer sends
        (CAPTURED, {}, "implicit deny"),  # a blind write would replace captured lines
        (CAPTURED, {"if_match": '"e"'}, "implicit deny"),  # and so would one over its ETag
        ("registry/capture/other/1/2026-12-07/x.jsonl", {"if_none_match": "*"}, "implicit deny"),
        ("registry/monitoring/digits-mlp/1/2026-12-07/080000-0a1b2c3d.json", {}, "allow"),
    ],
)
def test_the_predict_role_only_creates_captured_objects(
    key: str, headers: dict[str, str], expected: str
) -> None:
    assert decision(write(BUCKET, key, **headers), statements("Predictdigitsmlp"), BUCKET) == (
        expected
    )
