"""A directory store moved to S3 file by file (`aws s3 sync STORE s3://bucket/prefix`, the way
docs/registry.md's "Moving a store" gives) reads as it did: the directory store's own lock and stamp
files (`.tmp-lock-*`, `.tmp-generation`) travel along unless excluded, and S3 hides them from
listings as the directory store does, instead of calling them corrupt alias records."""

from __future__ import annotations

from pathlib import Path

from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore
from tests.publishing import publish_linear


def test_a_synced_directory_store_lists_on_s3_as_it_did(
    local_store: LocalStore, s3_store: S3Store, tmp_path: Path
) -> None:
    here = Registry(local_store)
    for version in ("1", "2"):
        publish_linear(here, tmp_path, "m", version)
        here.set_alias("m", "production", version)  # a move leaves .tmp-lock-production.json
    files = [p for p in local_store.root.rglob("*") if p.is_file()]
    assert any(p.name.startswith(".tmp-") for p in files)  # what a plain sync carries
    for path in files:  # as `aws s3 sync` does: every file, under the prefix
        s3_store.put_bytes(path.relative_to(local_store.root).as_posix(), path.read_bytes())

    there = Registry(s3_store)
    assert list(s3_store.list_keys("models/m/aliases")) == ["models/m/aliases/production.json"]
    assert there.alias_report("m") == ({"production": "2"}, [])  # no "not an alias record"
    assert list(s3_store.list_keys("")) == list(local_store.list_keys(""))
