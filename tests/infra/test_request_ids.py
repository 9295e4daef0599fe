"""The gateway's request ids stay unique across the forked workers of `aiaas serve --workers N`
(they numbered their requests alike: 522 distinct ids in a capture export of 1,000 requests)."""

from __future__ import annotations

import os

from infra.local.gateway import request_id


def test_a_forked_worker_numbers_its_requests_apart_from_its_parent_and_siblings() -> None:
    parent = [request_id(), request_id()]
    children = []
    for _ in range(2):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker: its first id, then out at once (no pytest teardown here)
            os.write(write, request_id().encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as got:
            children.append(got.read())
        assert os.waitpid(pid, 0)[1] == 0
    prefixes = {i.rsplit("-", 1)[0] for i in [*parent, *children]}
    assert len(prefixes) == 3  # the parent's (both its ids), and one per worker
    assert len({*parent, *children}) == 4
