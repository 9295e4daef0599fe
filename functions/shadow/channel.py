"""The caller's side of the local replay process (functions/shadow/process.py).

Copies go out in batches (functions/shadow/batch.py: a lone copy at once, a burst's every few
ms), each batch one message on a unix SOCK_SEQPACKET pair, sent without waiting (MSG_DONTWAIT):
a message is delivered whole or not at all, so a full socket (the replay process behind,
SEND_BUFFER bytes queued) or a replay process that is gone drops the batch's copies, counted.
Nothing on the caller's path waits for the replay or decodes anything; it takes one lock
(uncontended: the batch's) per copy.

The process is spawned on the first copy (a shadow is rare; most functions never pay for it),
inherits the function's environment (its store and settings), and dies with its parent (its
end of the pair closes). Its results come back summed per version pair, at most every 0.5 s,
read by one thread here that sleeps in a selector (epoll on Linux) in between and hands them to `report` (the
gateway's `/metrics`); while copies flow it also wakes every TICK_S to send what a burst left
held. When it exits or
is killed, the copies it held are counted as dropped, and a new one is spawned on a later copy
(at most one every RESPAWN_S). Each function instance has its own: `aiaas serve --workers N`
runs N, one per worker's instance, as N Lambda containers would have N queues.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import selectors
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from functions.predict.shadow_tally import ShadowLabels, ShadowTally
from functions.runtime.child_path import child_command, child_pythonpath
from functions.shadow.batch import TICK_S, CopyBatch

SEND_BUFFER = 4 * 1024 * 1024  # copies queued at most, in bytes (the kernel may cap it lower)
RESPAWN_S = 5.0
_RESULTS_MAX = 1024 * 1024
_FLAGS = socket.MSG_DONTWAIT | getattr(socket, "MSG_NOSIGNAL", 0)
log = logging.getLogger("aiaas.shadow")

Report = Callable[[ShadowLabels, ShadowTally], None]
Dropped = Callable[[ShadowLabels, int], None]


class ReplayChannel:
    """Copies to a replay process of its own; results back to `report`."""

    def __init__(self, env: Mapping[str, str], report: Report, dropped: Dropped) -> None:
        self._env = dict(env)
        self._report = report
        self._dropped = dropped
        self._sock: socket.socket | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._spawned_at = -math.inf
        self._lock = threading.Lock()
        self._pending: dict[ShadowLabels, int] = {}  # sent, no result yet
        self._settled = threading.Condition(self._lock)
        self._batch = CopyBatch()  # copies held for the next message (under `_lock`)
        self._closed = False  # `close`d: no process is spawned again

    def send(self, labels: ShadowLabels, line: bytes) -> bool:
        """Take `line` for the replay process (held, or sent with a batch now); False (the
        caller counts a drop) if there is no replay process to take it. A batch the socket
        refuses is counted as dropped here."""
        sock = self._sock or self._spawn()
        if sock is None:
            return False
        with self._lock:
            if self._sock is not sock:  # it exited meanwhile
                return False
            if not self._batch.add(labels, line, time.monotonic()):
                return True
            lines, counts = self._take()
        self._send(sock, lines, counts)
        return True

    def drain(self, timeout: float) -> bool:
        """Send what is held, then wait until every copy sent has its result (tests, benches);
        False on timeout."""
        self._flush(force=True)
        deadline = time.monotonic() + timeout
        with self._settled:
            while any(n > 0 for n in self._pending.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._settled.wait(left)
        return True

    def close(self) -> None:
        """End the replay process, waiting for nothing: the copies held are sent, then its
        socket shut for writing, so it replays what it was sent, sends the results, reads EOF
        and exits; the reader thread reports them and ends with it. `aiaas serve` retiring the
        function (AIAAS_SERVE_MAX_MODELS): the reader thread held the socket open for the
        server's life, and each reload spawned one more process (review_rev2 1)."""
        self._flush(force=True)
        with self._lock:
            self._closed = True
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)

    def _take(self) -> tuple[list[bytes], dict[ShadowLabels, int]]:
        """The held batch, counted as pending (its results may come back before `_send`
        returns). Under `_lock`."""
        lines, counts = self._batch.take()
        for labels, count in counts.items():
            self._pending[labels] = self._pending.get(labels, 0) + count
        return lines, counts

    def _send(
        self, sock: socket.socket, lines: list[bytes], counts: dict[ShadowLabels, int]
    ) -> None:
        try:
            sock.sendmsg(lines, (), _FLAGS)
        except OSError:  # full (BlockingIOError), gone (EPIPE, ECONNRESET, closed)
            with self._settled:
                if self._sock is not sock:  # gone: `_read` has counted them as lost
                    return
                for labels, count in counts.items():
                    self._pending[labels] -= count
                self._settled.notify_all()
            for labels, count in counts.items():
                self._dropped(labels, count)

    def _flush(self, force: bool = False) -> None:
        """Send the held copies if they are due (or `force`)."""
        with self._lock:
            sock = self._sock
            if sock is None or not (
                (force and self._batch.lines) or self._batch.due(time.monotonic())
            ):
                return
            lines, counts = self._take()
        self._send(sock, lines, counts)

    def _settle(self, labels: ShadowLabels, count: int) -> None:
        with self._settled:
            self._pending[labels] = self._pending.get(labels, 0) - count
            self._settled.notify_all()

    def _spawn(self) -> socket.socket | None:
        with self._lock:
            if self._sock is not None or self._closed:
                return self._sock
            if time.monotonic() - self._spawned_at < RESPAWN_S:
                return None  # it died moments ago: do not spawn one per copy
            self._spawned_at = time.monotonic()
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            mine.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            try:
                self.process = self._start(theirs.fileno())
            except OSError as exc:
                log.error("cannot start the shadow replay process: %s", exc)
                mine.close()
                return None
            finally:
                theirs.close()
            reader = threading.Thread(
                target=self._read, args=(mine, self.process), name="aiaas-shadow-results"
            )
            reader.daemon = True
            reader.start()
            self._sock = mine
            return mine

    def _start(self, fd: int) -> subprocess.Popen[bytes]:
        # The same code as this process: its import path, not only the installed package.
        env = {**self._env, "PYTHONPATH": child_pythonpath()}
        return subprocess.Popen(  # this interpreter and one of our modules
            child_command("functions.shadow.process", str(fd), str(os.getpid())),
            pass_fds=(fd,),
            env=env,
            stdin=subprocess.DEVNULL,
        )

    def _read(self, sock: socket.socket, process: subprocess.Popen[bytes]) -> None:
        # A selector, not select(): select() refuses a descriptor numbered 1024 or more, which a
        # busy server's socket pair gets (many connections open); it raised in this thread,
        # which died, and no result came back again (the suite's late tests, CI 2026-12-07).
        waiting = selectors.DefaultSelector()
        waiting.register(sock, selectors.EVENT_READ)
        while True:
            timeout = TICK_S if self._batch.active(time.monotonic()) else None
            try:
                readable = waiting.select(timeout)
                data = sock.recv(_RESULTS_MAX) if readable else None
            except OSError:
                data = b""
            if data == b"":
                break
            if data is not None:
                for row in orjson.loads(data):
                    self._result(row)
            self._flush()
        waiting.close()
        with self._lock:  # the process is gone: what it held, or was held for it, is lost
            self._sock = None
            self._take()
            lost = {labels: n for labels, n in self._pending.items() if n > 0}
        sock.close()
        code = process.wait()
        said = log.info if self._closed else log.warning  # closed: its function was retired
        said("the shadow replay process exited (%s); %d copies dropped", code, sum(lost.values()))
        for labels, count in lost.items():
            self._dropped(labels, count)
            self._settle(labels, count)

    def _result(self, row: list[Any]) -> None:
        labels, tally = ShadowTally.from_row(row)
        self._report(labels, tally)
        self._settle(labels, tally.copies)
