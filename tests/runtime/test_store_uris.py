"""Store URIs `open_store` refuses, each in one line saying what a store URI is."""

from __future__ import annotations

import pytest

from functions.runtime.errors import AiaasError
from functions.runtime.store import open_store


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3://", "names no bucket"),
        ("gs://b/p", "unsupported store URI"),
        # A typo an operator made: it served (and published) a local directory 's3:/team'.
        ("s3:/team", "is not s3://bucket"),
    ],
)
def test_open_store_rejects_bad_uris(uri: str, message: str) -> None:
    with pytest.raises(AiaasError, match=message):
        open_store(uri)
