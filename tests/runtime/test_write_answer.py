"""A store write carried to its answer through Ctrl-C: the caller hears what landed, then the
stop is raised; a write that never answers is not waited for past ANSWER_WAIT_S."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import pytest

from functions.runtime import write_answer
from functions.runtime.errors import StoreError
from functions.runtime.write_answer import to_its_answer

pytestmark = pytest.mark.usefixtures("stop_signals_as_in_a_terminal")


def ctrl_c() -> None:
    """SIGINT to the main thread, as a terminal's Ctrl-C reaches it, from another thread."""
    main = threading.main_thread().ident
    assert main is not None
    signal.pthread_kill(main, signal.SIGINT)


def write_stopped_midway(result: object = "etag", *, fails: bool = False) -> Callable[[], object]:
    """A write that Ctrl-C (SIGINT, as the terminal sends it) interrupts while it runs."""
    started, stopped = threading.Event(), threading.Event()

    def write() -> object:
        started.set()
        assert stopped.wait(10)
        time.sleep(0.05)  # the store answers a moment after the stop
        if fails:
            raise StoreError("refused")
        return result

    def stop() -> None:
        assert started.wait(10)
        ctrl_c()
        stopped.set()

    threading.Thread(target=stop).start()
    return write


def test_a_write_that_lands_is_heard_before_the_stop_is_raised() -> None:
    heard: list[object] = []
    with pytest.raises(KeyboardInterrupt):
        to_its_answer(write_stopped_midway(), heard.append)
    assert heard == ["etag"]  # the caller knows to remove what it wrote


def test_a_refused_write_raises_the_stop_and_is_not_heard() -> None:
    heard: list[object] = []
    with pytest.raises(KeyboardInterrupt):
        to_its_answer(write_stopped_midway(fails=True), heard.append)
    assert heard == []


def test_without_a_stop_the_write_s_answer_and_error_are_its_own() -> None:
    heard: list[object] = []
    assert to_its_answer(lambda: 5, heard.append) == 5
    assert heard == [5]

    def refused() -> None:
        raise StoreError("refused")

    with pytest.raises(StoreError, match="refused"):
        to_its_answer(refused, heard.append)
    assert heard == [5]


def test_a_store_that_never_answers_is_left_after_answer_wait_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(write_answer, "ANSWER_WAIT_S", 0.3)
    hung = threading.Event()

    def stop() -> None:
        time.sleep(0.1)
        ctrl_c()

    threading.Thread(target=stop).start()
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        to_its_answer(lambda: hung.wait(30), lambda _: None)
    assert 0.3 <= time.monotonic() - began < 5
    hung.set()
