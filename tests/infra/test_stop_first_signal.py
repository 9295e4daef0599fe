"""SIGTERM, then SIGINT 20 ms later, both landing during one long C call: the SIGTERM, sent
first, is the stop (143), as stop_signals.py says ("the first stop signal wins").

Python runs the handlers of signals that landed while the main thread was in C from the lowest
number up, so SIGINT's ran first: `aiaas publish` of a 64 MB model stopped that way 1.5 s in
(staging or hashing the file) exited 130 "interrupted", not 143 (rev13 6). Real signals from
another process to this one, while it hashes in C (PBKDF2: seconds, no signal check inside).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess

import pytest

from infra.cli.stop_signals import Stopped, stopped_by_signals

pytestmark = pytest.mark.usefixtures("stop_signals_as_in_a_terminal")


def test_sigterm_then_sigint_in_one_c_call_stops_as_sigterm() -> None:
    pid = os.getpid()
    sender = subprocess.Popen(
        ["sh", "-c", f"sleep 0.3; kill -TERM {pid}; sleep 0.02; kill -INT {pid}; echo sent"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        with pytest.raises(KeyboardInterrupt) as raised, stopped_by_signals():
            hashlib.pbkdf2_hmac("sha256", b"p", b"s", 6_000_000)  # ~2 s in C
            raise AssertionError("no signal landed during the C call")
    finally:
        out, _ = sender.communicate(timeout=30)
    assert out == "sent\n"
    assert isinstance(raised.value, Stopped) and raised.value.signum == signal.SIGTERM
    assert signal.set_wakeup_fd(-1) == -1  # the wakeup fd given back
