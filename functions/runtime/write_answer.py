"""A store write carried to its answer through a stop (Ctrl-C, and the SIGTERM or SIGHUP the
CLI raises as one), so that the writer knows what it wrote before it unwinds.

A request sent is carried out by the store whether or not its answer is read. Ctrl-C landing
while S3 completed a publish's multipart upload (a few tenths of a second for 160 MB on moto,
8-10 s for 2.5 GB) raised a KeyboardInterrupt where the client waited for the answer: the
model landed, the publish never learnt that it had, and its cleanup left the whole file in the
store under a version without a manifest. Cleaning up at once would not do either: S3 is still
completing the upload then, and a delete or an abort sent meanwhile finds nothing to remove.
The write runs on a thread of its own; a stop waits for its answer, at most `ANSWER_WAIT_S`
(a store that has not answered by then may be hung: its client's retries run for minutes,
and Ctrl-C must still end the command), and is raised once the caller has heard of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import TypeVar

T = TypeVar("T")

ANSWER_WAIT_S = 60.0  # after a stop: S3 completes gigabytes in seconds


def to_its_answer(call: Callable[[], T], landed: Callable[[T], object]) -> T:
    """`call()`, a store write, run to its answer; `landed(result)` told when it succeeded, and
    its result returned. A stop that lands meanwhile is raised once that is done, in place of
    the write's own error when it failed; at once when the write had not begun."""
    answer: Future[T] = Future()
    thread = threading.Thread(target=_run, args=(call, answer), name="aiaas-write", daemon=True)
    stop: KeyboardInterrupt | None = None
    deadline, began, heard = float("inf"), False, False
    while not heard:
        try:  # every step inside: a stop landing between two of them is caught as well
            if stop is not None and answer.cancel():
                break  # the write had not begun: it never will
            if not began:
                began = True
                thread.start()
            elif answer.done():
                if answer.exception() is None:
                    landed(answer.result())
                heard = True
            elif time.monotonic() >= deadline:
                break  # no answer in time: the write may land unnoticed
            else:
                wait([answer], timeout=None if stop is None else deadline - time.monotonic())
        except KeyboardInterrupt as exc:  # a second one too: the first is the one raised
            if stop is None:
                stop, deadline = exc, time.monotonic() + ANSWER_WAIT_S
    if stop is not None:  # in place of the write's error, if it failed
        raise stop
    return answer.result()  # or its error


def _run(call: Callable[[], T], answer: Future[T]) -> None:
    if not answer.set_running_or_notify_cancel():
        return  # a stop came first: nothing is sent
    try:
        answer.set_result(call())
    except BaseException as exc:  # handed to the waiting thread, which raises it
        answer.set_exception(exc)
