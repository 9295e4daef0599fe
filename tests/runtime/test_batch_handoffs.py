"""While a span is scored the GIL is handed over every millisecond (handoffs.py), and the
interpreter's own interval comes back once the last span ends, whatever threads overlap."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from functions.runtime.batch.handoffs import SWITCH_S, quick_handoffs


@pytest.fixture(autouse=True)
def interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    yield
    sys.setswitchinterval(before)


def test_the_interval_is_short_inside_and_back_after() -> None:
    with quick_handoffs():
        assert sys.getswitchinterval() == pytest.approx(SWITCH_S, abs=1e-5)
        with quick_handoffs():  # a nested span
            assert sys.getswitchinterval() == pytest.approx(SWITCH_S, abs=1e-5)
        assert sys.getswitchinterval() == pytest.approx(SWITCH_S, abs=1e-5)
    assert sys.getswitchinterval() == pytest.approx(0.005, abs=1e-5)


def test_an_interval_already_shorter_is_kept() -> None:
    sys.setswitchinterval(0.0002)
    with quick_handoffs():
        assert sys.getswitchinterval() == pytest.approx(0.0002, abs=1e-5)
    assert sys.getswitchinterval() == pytest.approx(0.0002, abs=1e-5)


def test_overlapping_spans_on_threads_put_back_the_interval_once_the_last_ends() -> None:
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[float] = []

    def first() -> None:
        with quick_handoffs():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with quick_handoffs():
            second_in.set()
            first_out.wait(5)
            seen.append(sys.getswitchinterval())  # the first span ended: still short

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == [pytest.approx(SWITCH_S, abs=1e-5)]
    assert sys.getswitchinterval() == pytest.approx(0.005, abs=1e-5)


def test_an_error_inside_still_puts_the_interval_back() -> None:
    with pytest.raises(RuntimeError), quick_handoffs():
        raise RuntimeError("a span failed")
    assert sys.getswitchinterval() == pytest.approx(0.005, abs=1e-5)
