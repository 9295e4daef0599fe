"""Ranged reads agree on both stores (the directory store and S3 on moto's server)."""

from __future__ import annotations

from functions.runtime.store import ObjectStore


def test_an_empty_range_reads_nothing_on_either_store(store: ObjectStore) -> None:
    """S3 takes 'bytes=5-4' as no range at all and answered the whole object."""
    store.put_bytes("a/range.bin", b"0123456789")
    for start, end in ((5, 5), (5, 4), (0, 0)):
        with store.open_read("a/range.bin", start, end) as body:
            assert body.read() == b""
    with store.open_read("a/range.bin", 2, 5) as body:
        assert body.read() == b"234"
