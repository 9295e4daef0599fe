"""A stop signal while a worker of `aiaas serve --workers N` is still starting.

With 2 workers the server answers as soon as one of them serves; the other may still be
building its app (a loaded machine: hundreds of ms). A SIGTERM then reached that worker before
it listened for its stop: the supervisor's own signal handler, inherited through the fork, took
it, the worker went on to serve, and the supervisor waited for it until the end of the grace,
then cut it off: exit 1, `were cut off`, with every request long answered. A request in flight
hid the cause in tests/infra/test_serve_shutdown.py: the stop came ms after it, and so ms
after `ready`. Here one worker is held in its start (it waits on a FIFO the test opens) until
the supervisor has sent it the SIGTERM.
"""

from __future__ import annotations

import os
import signal
import textwrap
import time
from pathlib import Path

from tests.infra.test_serve import ServeProcess
from tests.s3server import children

GRACE_S = 4  # a stop that waits it out is the failure, so it is kept short

# The CLI's main with a short grace, in which the first worker to start its app waits for the
# test (`go`, a FIFO: opening it blocks until the test opens its other end).
LATE_WORKER_MAIN = """
import dataclasses, os, sys
import infra.local.server as server
from infra.cli.main import main

HERE = os.path.dirname(os.path.abspath(__file__))
serve = server.serve

def late(make_app):
    def make():
        try:
            os.close(os.open(os.path.join(HERE, "starting"), os.O_CREAT | os.O_EXCL))
        except FileExistsError:  # the other worker
            return make_app()
        with open(os.path.join(HERE, "go")) as go:
            go.read()
        return make_app()
    return make

def late_worker(host, port, make_app, *, limits, **kwargs):
    limits = dataclasses.replace(limits, shutdown_grace_s=GRACE_S)
    return serve(host, port, late(make_app), limits=limits, **kwargs)

server.serve = late_worker
sys.exit(main())
"""


def test_a_worker_still_starting_stops_at_the_first_signal(tmp_path: Path) -> None:
    main = LATE_WORKER_MAIN.replace("GRACE_S", str(GRACE_S))
    (tmp_path / "aiaas_late_worker.py").write_text(textwrap.dedent(main))
    os.mkfifo(tmp_path / "go")
    (tmp_path / "store").mkdir()
    server = ServeProcess(
        tmp_path / "store",
        "--workers",
        "2",
        env={"PYTHONPATH": str(tmp_path)},
        main="aiaas_late_worker",
    )
    try:
        server.wait_ready()  # the other worker serves
        assert (tmp_path / "starting").exists()
        workers = children(server.process.pid)
        assert len(workers) == 2
        sent = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        # The supervisor signals both workers, then waits for each: the one serving has
        # stopped, so the late one has been sent its SIGTERM.
        deadline = sent + 10
        while len(children(server.process.pid)) == 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(children(server.process.pid)) == 1, server.output()
        with open(tmp_path / "go", "w") as go:  # the late worker goes on with its start
            go.write("go")
        code = server.process.wait(timeout=GRACE_S + 15)
        stopped_in = time.monotonic() - sent
    finally:
        server.stop()
    assert code == 0, server.output()
    assert stopped_in < GRACE_S / 2, (stopped_in, server.output())
    assert "cut off" not in server.output()
