"""A server with many connections open gives the replay channel's socket a descriptor numbered
past 1024, which `select()` refuses: the results thread raised and died, so no shadow result
came back again and a drain waited forever (the suite's late tests on CI, 2026-12-07)."""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.predict import metric_names as m
from tests.functions.test_predict_shadow import (
    process_of,
    prometheus,
    registry_with,
    requests,
    send_all,
    serve,
)

PAST_SELECT = 1100  # select() takes descriptors below 1024 (FD_SETSIZE)


@contextlib.contextmanager
def descriptors_taken_below(number: int) -> Iterator[None]:
    """Every descriptor below `number` open, as a server holding that many connections has
    them, so the next socket gets one past it; closed again on the way out."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < number + 64:
        if hard != resource.RLIM_INFINITY and hard < number + 64:
            pytest.skip(f"this process may open {hard} files")
        resource.setrlimit(resource.RLIMIT_NOFILE, (number + 64, hard))
    taken: list[int] = []
    try:
        while True:
            fd = os.open(os.devnull, os.O_RDONLY)
            taken.append(fd)
            if fd >= number:
                break
        yield
    finally:
        for fd in taken:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_copies_are_replayed_when_the_channel_descriptor_is_past_select(tmp_path: Path) -> None:
    service, _, gateway = serve(registry_with(tmp_path, ("a", "b", "c")), tmp_path)
    sink = service.shadow.sink  # type: ignore[attr-defined]
    with descriptors_taken_below(PAST_SELECT):
        send_all(service, requests()[:5])  # the first copy opens the channel: its pair past 1100
        # Copies are sent after the responses, from a thread: on a loaded CI machine the first
        # had not opened the channel when the descriptors were given back (it got fd 139).
        waited = time.monotonic() + 30
        while sink.channel is None and time.monotonic() < waited:
            time.sleep(0.01)
    channel = sink.channel
    assert channel is not None and channel._sock.fileno() > 1024
    assert service.shadow.drain(60)
    assert prometheus(gateway, m.SHADOW_REQUESTS) == 5
    process = process_of(service)
    assert process is not None and process.poll() is None
