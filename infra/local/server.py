"""HTTP transport of `aiaas serve`: granian (Rust, hyper) running the gateway's RSGI app.

Why granian (docs/benchmarks/serve.md): uvicorn was as fast for a framework-free app in the
issue's measurements, but its httptools protocol buffered a 64 MB request line whole and it
has no header read timeout; granian answers 431 after a bounded read and closes slow heads,
and its RSGI interface is ~15 us a request cheaper than its ASGI one here. What the server
enforces, configured here:
- the request line and headers fit in `max_head_bytes` (hyper answers 431 past it);
- a request head must arrive within `header_timeout_s`, also on an idle keep-alive connection
  (slowloris and idle connections are closed, so file descriptors come back);
- a worker holds up to `connection_limit()` connections (thousands, bounded by its open-file
  limit), more wait in the kernel's backlog: granian's `backpressure` counts connections, idle
  ones too, and set to `max_in_flight` (as it was) 257 idle connections, or unauthenticated
  heads whose body never came, stalled every other client and the health probes until the
  header (10 s) or body (30 s) timeout closed them. `max_in_flight` requests per worker are
  counted by the app (`infra/local/app.py`: one more that would wait is a 503 with
  Retry-After);
- HEAD gets headers only, pipelined requests are answered in order, a response is written
  before the next request on its connection is read (a client that never reads stalls only
  itself), `100 Continue` is sent only when the app reads the body;
- SIGTERM/SIGINT: stop accepting, let requests in flight finish (for `shutdown_grace_s`;
  after it, or at a second signal, they are cut off: a 503 to retry, and the exit status is 1),
  then exit (0), once the exit handlers have written what they hold, for at most
  EXIT_HANDLERS_S (`infra/local/ending.py`; past it the exit status is 1). With `workers` > 1 the supervisor counts the signals and keeps the grace
  (`_supervisor`); a worker acts on its first SIGTERM only, not on a Ctrl-C's SIGINT
  (`_worker_signals`), and cuts its requests off when the supervisor sends it SIGUSR1; a signal
  sent while a worker still starts waits for it (`_start_blocked`).
One worker (the default) runs in this process, on granian's embedded server: no supervisor
process and no fork, which starts ~15 ms sooner and holds one interpreter instead of two
(docs/benchmarks/analysis.md, cold start). `workers` > 1 are processes under granian's
supervisor, sharing the port, each with its own function instances (as Lambda runs several
containers). A worker that dies (SIGKILL, the OOM killer) is respawned by granian while the
others serve on (its callers in flight get a reset connection; a second death within 5.5 s is
granian's crash loop: the server exits 1); with one worker, its death is the server's.
Body size and body read time are the app's (`infra/local/request_body.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from infra.local import lambda_logs, signal_clock, worker_deaths
from infra.local.connection_limit import MAX_IN_FLIGHT, connection_limit
from infra.local.ending import EXIT_HANDLERS_S, end_process, insisting, run_exit_handlers
from infra.local.worker_reload import reload_line

if TYPE_CHECKING:
    from infra.local.app import GatewayApp


PR_SET_PDEATHSIG = 1  # linux/prctl.h
CUT_OFF_WRITE_S = 0.2  # for the 503s of requests cut off at the end of the grace to go out
CUT_OFF_SIGNAL = signal.SIGUSR1  # supervisor -> worker: cut the requests still running off
# A worker starts with these blocked, until its event loop runs and takes them (`_start_blocked`).
WORKER_SIGNALS = {signal.SIGTERM, signal.SIGINT, CUT_OFF_SIGNAL}
WORKER_EXIT_AFTER_CUT_S = 1.0  # a worker cut off exits by then (+ its exit handlers' bound)
# granian kills a worker still alive this long after the grace: one whose loop is stuck, never
# one cut off at the grace and writing what its exit handlers hold (infra/local/ending.py).
KILL_AFTER_GRACE_S = int(WORKER_EXIT_AFTER_CUT_S + EXIT_HANDLERS_S) + 2

__all__ = ["ServerLimits", "end_process", "serve"]


@dataclass(frozen=True)
class ServerLimits:
    max_head_bytes: int = 64 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_in_flight: int = MAX_IN_FLIGHT
    shutdown_grace_s: int = 30


def serve(
    host: str,
    port: int,
    make_app: Callable[[], GatewayApp],
    *,
    workers: int = 1,
    limits: ServerLimits = ServerLimits(),
) -> None:
    """Serve on host:port until SIGINT/SIGTERM; `make_app` runs once in each worker."""
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    options: dict[str, Any] = {
        "address": host,
        "port": port,
        "interface": Interfaces.RSGI,
        "http": HTTPModes.http1,
        "websockets": False,
        "backlog": 1024,
        "backpressure": connection_limit(limits.max_in_flight),
        "http1_settings": HTTP1Settings(
            header_read_timeout=int(limits.header_timeout_s * 1000),
            keep_alive=True,
            # hyper's read buffer: a request line plus headers over this is a 431. Its floor is
            # 8 KiB; bodies stream through it in pieces whatever their size.
            max_buffer_size=max(8192, limits.max_head_bytes),
            pipeline_flush=False,
        ),
        "log_level": LogLevels.warning,
        "log_dictconfig": lambda_logs.granian_config(),
    }
    if workers == 1:
        _serve_embedded(make_app, limits, options)
        return
    from granian.constants import Loops

    server = _supervisor(
        limits.shutdown_grace_s,
        target="aiaas-gateway",  # a label: the app comes from make_app, not an import path
        workers=workers,
        loop=Loops.auto,  # uvloop where installed
        **options,
    )
    try:
        server.serve(target_loader=partial(_worker_app, make_app, os.getpid()), wrap_loader=False)
    finally:
        server.stop_grace()
    if server.cut:
        _say_cut_off(limits)
    if server.cut or server.failed:
        raise SystemExit(1)


def _supervisor(grace_s: int, **options: Any) -> Any:
    """granian's supervisor (MPServer), which on its own ignores a second stop signal and at
    the end of the grace kills the workers (their callers' connections reset, no answer). Here
    a second SIGINT/SIGTERM, or the end of the grace, has each worker cut its requests off
    (CUT_OFF_SIGNAL): each caller gets a 503 to retry, and the server exits 1. granian's own
    kill stays, later, for a worker whose event loop is stuck.

    granian has no hook for this: its signal handler, `signal_handler_interrupt`, is
    overridden (granian registers the bound method as it starts), and its public `wrks`
    (each with its multiprocessing `inner` process) are read. Guarded by
    tests/infra/test_serve_shutdown.py, which stops real servers so. `_stop_workers` is
    extended to read the workers' exit statuses (tests/infra/test_serve_stop_flush.py), and
    `_spawn_worker` to start each with its stop signals blocked (`_start_blocked`,
    tests/infra/test_serve_stop_while_starting.py)."""
    from granian.server.mp import MPServer

    class Supervisor(MPServer):
        cut = False
        failed = False  # a worker stopped with an exit status other than 0
        _grace: threading.Timer | None = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.died: set[int] = set()  # slots whose worker died unasked (worker_deaths.py)

        def signal_handler_interrupt(self, *args: Any, **kwargs: Any) -> None:
            if insisting():  # a second signal: stop now
                self.cut_off()
                return
            if self.interrupt_signal:  # the first one's duplicate (ending.SAME_STOP_S)
                return
            super().signal_handler_interrupt(*args, **kwargs)  # type: ignore[no-untyped-call]
            self._grace = threading.Timer(grace_s, self.cut_off)
            self._grace.daemon = True
            self._grace.start()

        def cut_off(self) -> None:
            self.cut = True
            for worker in list(self.wrks):
                if worker.inner.pid is not None:
                    with contextlib.suppress(ProcessLookupError):  # it has just exited
                        os.kill(worker.inner.pid, CUT_OFF_SIGNAL)

        def stop_grace(self) -> None:
            if self._grace is not None:
                self._grace.cancel()

        def _spawn_worker(self, *args: Any, **kwargs: Any) -> Any:
            # Every worker: the first ones and those granian's reload (SIGHUP) starts.
            worker = super()._spawn_worker(*args, **kwargs)
            worker_deaths.watch(worker, self.died)  # said with its pid and how it ended
            worker.start = partial(  # type: ignore[method-assign]
                worker_deaths.started, partial(_start_blocked, worker.start), worker, self.died
            )
            worker.is_alive = partial(_alive, worker.inner)  # type: ignore[method-assign]
            return worker

        def _reload(self, *args: Any, **kwargs: Any) -> Any:
            # SIGHUP: granian says so at INFO, below the level serve gives it, so a reload
            # left no line at all (new pids' "loaded" lines only).
            lambda_logs.say(reload_line([w.inner.pid for w in self.wrks]))
            return super()._reload(*args, **kwargs)  # type: ignore[no-untyped-call]

        def _stop_workers(self) -> None:
            # A worker whose exit handlers ran past their bound exits 1 (it said what was
            # lost); granian does not look, and the server exited 0.
            workers = list(self.wrks)
            super()._stop_workers()  # type: ignore[no-untyped-call]
            self.failed = any(w.inner.exitcode for w in workers)

    return Supervisor(
        workers_kill_timeout=grace_s + KILL_AFTER_GRACE_S, respawn_failed_workers=True, **options
    )


def _alive(process: multiprocessing.process.BaseProcess) -> bool:
    """Whether a worker process runs, by its sentinel (ready once it exited). granian's stop
    asks `Process.is_alive`, whose waitpid finds nothing when the worker's watcher thread has
    just reaped it but not yet set its return code: an exited worker read as alive, and was
    "killed after it refused to gracefully stop" (seen under load, 2 workers)."""
    try:
        return not multiprocessing.connection.wait([process.sentinel], timeout=0)
    except ValueError:  # not started
        return process.is_alive()


def _start_blocked(start: Callable[[], None]) -> None:
    """Start a worker (granian's `start`: multiprocessing's fork, then a thread that waits for
    it) with WORKER_SIGNALS blocked. The child keeps the mask, so a stop signal that reaches it
    while it still starts (building its app, its loop not yet running) waits, and is taken once
    its loop runs (`_worker_signals`). Unblocked, it went to the supervisor's own handler,
    inherited through the fork, and was lost: the worker went on to serve, and the supervisor
    waited for it to the end of the grace, then cut it off (exit 1, every request answered):
    3 stops in 200 sent ms after a request's start, so after `ready`, which the other worker
    had answered. A signal the supervisor gets meanwhile waits as long as the fork."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_SIGNALS)
    try:
        start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _say_cut_off(limits: ServerLimits) -> None:
    lambda_logs.say(
        f"aiaas serve: stopped; requests still running {limits.shutdown_grace_s} s "
        "after the stop signal (or at a second one) were cut off",
        logging.WARNING,
        stderr=True,
    )


def _worker_app(make_app: Callable[[], GatewayApp], supervisor: int) -> GatewayApp:
    """`make_app` in a worker of granian's supervisor, which ends with it: killed (SIGKILL, the
    OOM killer), the supervisor leaves its workers serving the port, and a restart then finds
    it taken. Linux's PR_SET_PDEATHSIG kills the worker when its parent dies; a stop through
    the supervisor ends the workers first, so it is never sent then.

    A worker ends in os._exit (multiprocessing ends its children so), which skips the exit
    handlers the functions registered (captured lines and drift counts held are written by
    them): the app runs them once it has stopped (infra/local/ending.py)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        pass
    else:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != supervisor:  # it died before prctl: no signal will come
            os._exit(1)
    lambda_logs.name_worker()
    app = make_app()
    app.on_stopped = partial(_worker_stopped, app)
    # granian's worker takes its stop signal from this function, looked up as it starts.
    import granian._signals

    granian._signals.set_loop_signals = partial(_worker_signals, app)
    return app


def _worker_stopped(app: GatewayApp) -> None:
    """The end of a worker's stop: its exit handlers run (bounded); cut off, or with them
    still running, it exits 1 at once (a handler's thread may still be running, and a normal
    exit would wait for it)."""
    if app.cut or not run_exit_handlers():
        end_process(1, signals=False)
    if app.pool.busy():  # a call past its Timeout, answered 504, runs on: not waited for
        end_process(0, signals=False)


def _worker_signals(app: GatewayApp, loop: asyncio.AbstractEventLoop) -> Any:
    """A worker's stop signal, as granian's own but on the first SIGTERM only, and none on
    SIGINT. A Ctrl-C reaches the supervisor and every worker, and the supervisor then sends
    each a SIGTERM (so may systemd, to the whole group):
    - granian's `WorkerSignal` set a second time before its first was taken blocks forever
      holding the GIL: the worker stopped answering (requests in flight too) until the
      supervisor killed it at the end of the grace;
    - a worker with no request in flight stopped on the Ctrl-C itself, before the supervisor
      had asked it to, and granian took its exit for a crash ("Unexpected exit from
      worker-1", exit 1; 1 Ctrl-C in a few). The supervisor, which counts the Ctrl-Cs, stops
      the workers."""
    from granian._granian import WorkerSignal

    stopping = WorkerSignal()
    signalled: list[int] = []

    def stop() -> None:
        if not signalled:
            signalled.append(1)
            stopping.set()

    loop.add_signal_handler(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # (one pending since the fork is dropped)
    signal.signal(CUT_OFF_SIGNAL, partial(_cut_off_worker, app, loop))
    # Blocked since the fork (`_start_blocked`): taken once the loop runs, which uvloop reads
    # signals in only then (one sent before was kept, unread, until the next). Other threads,
    # started meanwhile, keep them blocked: they all come to this, the main, thread.
    loop.call_soon(signal.pthread_sigmask, signal.SIG_UNBLOCK, WORKER_SIGNALS)
    return stopping


def _cut_off_worker(app: GatewayApp, loop: asyncio.AbstractEventLoop, *_: Any) -> None:
    """CUT_OFF_SIGNAL from the supervisor: the app cancels its requests on its loop (each
    answers 503), the connections drain and the worker ends in `_worker_stopped`. Not a loop
    signal handler: a worker whose loop has already stopped (granian leaves it once hyper
    has no connection left, then waits in `GatewayApp.__rsgi_del__` for the warm-up or a
    handler whose caller went away) still exits, after WORKER_EXIT_AFTER_CUT_S and its exit
    handlers (started then if they have not been)."""
    with contextlib.suppress(RuntimeError):  # the loop is closed
        loop.call_soon_threadsafe(app.cut_off)
    exit_later = threading.Timer(WORKER_EXIT_AFTER_CUT_S, partial(end_process, 1, signals=False))
    exit_later.daemon = True
    exit_later.start()


def _serve_embedded(
    make_app: Callable[[], GatewayApp], limits: ServerLimits, options: dict[str, Any]
) -> None:
    """One worker on granian's embedded server, in this process's event loop (uvloop where
    installed, as the supervisor's workers get)."""
    from granian.log import LogLevels
    from granian.server.embed import Server

    # At warning it says "Embedded server is experimental!" on every start; its errors still show.
    server = Server(target=make_app, factory=True, **{**options, "log_level": LogLevels.error})
    # The grace is kept here, not by granian: past its own timeout the embedded server raises
    # TimeoutError out of serve() and a callback fails later on the cancelled worker.
    server.workers_kill_timeout = None

    async def run() -> None:
        loop = asyncio.get_running_loop()
        serving = asyncio.current_task()
        assert serving is not None

        def stop(arrived: float) -> None:
            if insisting(arrived):  # a second signal: stop now
                serving.cancel()
                return
            if server.interrupt_signal:  # the first one's duplicate (ending.SAME_STOP_S)
                return
            server.stop()  # type: ignore[no-untyped-call]
            loop.call_later(limits.shutdown_grace_s, serving.cancel)
            loop.set_exception_handler(_quiet_cut_off)

        # SIGHUP too (a closed terminal): granian's supervisor reloads its workers on it, which
        # one in-process worker cannot do, and its default action would drop requests in flight.
        # Timed as they arrive: the loop reads them late when a call holds it (signal_clock.py).
        signal_clock.listen(loop, (signal.SIGINT, signal.SIGTERM, signal.SIGHUP), stop)
        try:
            await server.serve()
        except asyncio.CancelledError:
            # Each request still running is cancelled, so its caller gets a 503 to retry
            # (infra/local/app.py), given a moment to be written. A thread still inside a
            # handler cannot be stopped, and the interpreter would wait for it at exit: as
            # granian's supervisor kills a worker past the grace, the process ends here, once
            # its exit handlers have written what they hold.
            for task in asyncio.all_tasks():
                if task is not serving:
                    task.cancel()
            await asyncio.sleep(CUT_OFF_WRITE_S)
            _say_cut_off(limits)
            end_process(1)

    try:
        import uvloop
    except ImportError:  # Windows, or a platform without a wheel
        asyncio.run(run())
    else:
        uvloop.run(run())


def _quiet_cut_off(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's error handler once stopping: a worker cut off at the grace gets granian's
    "drained" callback later, on its cancelled future (InvalidStateError): said above already."""
    if not isinstance(context.get("exception"), asyncio.InvalidStateError):
        loop.default_exception_handler(context)
