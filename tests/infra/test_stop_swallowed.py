"""A stop signal whose exception lands in a finalizer, which Python swallows ("Exception ignored
in ..."), still stops the command: at the work's next progress report, on the main thread.

Before, a batch run on S3 stopped at such a moment (boto3's streams close in `__del__`) scored
to the end and exited 0 (seen once in eight CI runs of test_batch_stopped.py)."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from infra.cli.row_progress import Progress
from infra.cli.stop_signals import Stopped, stopped_by_signals


class _SignalledWhileFinalized:
    """Sends `signum` to this process from its finalizer, so the handler runs inside it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __del__(self) -> None:
        os.kill(os.getpid(), self.signum)
        total = 0
        for i in range(10_000):  # the handler runs between these bytecodes, inside __del__
            total += i


def _finalize_signalled(signum: int) -> None:
    _SignalledWhileFinalized(signum)  # dropped at once: __del__ runs here


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    ("signum", "raised"), [(signal.SIGTERM, Stopped), (signal.SIGINT, KeyboardInterrupt)]
)
def test_a_stop_swallowed_by_a_finalizer_is_raised_at_the_next_progress(
    signum: int, raised: type[BaseException]
) -> None:
    progress = Progress("iris batch rows.csv", show=False)
    reached = []
    with pytest.raises(raised) as stopped, stopped_by_signals():
        _finalize_signalled(signum)
        reached.append("after the finalizer")  # swallowed there: the work goes on ...
        progress.add(1)  # ... to its next progress, which stops it
        reached.append("after the progress")
    assert reached == ["after the finalizer"]
    if isinstance(stopped.value, Stopped):
        assert stopped.value.signum == signum


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_it_is_raised_once_on_the_main_thread_only_and_forgotten_with_its_block() -> None:
    progress = Progress("pull iris", show=False)
    with pytest.raises(Stopped), stopped_by_signals():
        _finalize_signalled(signal.SIGTERM)
        worker = threading.Thread(target=progress.add, args=(1,))  # an upload part's thread
        worker.start()
        worker.join()
        assert progress.done == 1  # counted there, not raised there
        progress(2)
    progress(3)  # the block is over: nothing left to raise
    with stopped_by_signals():
        progress.add(1)  # a new block took no signal
    assert progress.done == 4


def test_a_stop_that_propagated_is_not_raised_again() -> None:
    progress = Progress("publish iris", show=False)
    with pytest.raises(Stopped), stopped_by_signals():
        try:
            _stop_self()
        finally:
            progress.add(1)  # cleanup that reports progress while the stop unwinds: no second
    assert progress.done == 1


def test_a_stop_a_library_caught_and_dropped_is_raised_at_the_next_progress() -> None:
    """Not every swallow goes through sys.unraisablehook: an `except BaseException: pass` drops
    it just as well (the S3 stop test's run went on to exit 0 with nothing said)."""
    progress = Progress("iris batch big.csv", show=False)
    with pytest.raises(Stopped), stopped_by_signals():
        try:  # noqa: SIM105 - written out, as a careless library writes it
            _stop_self()
        except BaseException:  # noqa: S110 - what a careless library does
            pass
        progress.add(1)


def _stop_self() -> None:
    """SIGTERM to this process, then Python code for its handler to run in (it raises there)."""
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(10_000):
        pass
