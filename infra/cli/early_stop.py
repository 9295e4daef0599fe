"""SIGTERM or Ctrl-C while the CLI starts (its imports, its parsing, serve's checks): a clean stop.

Python ends a process on SIGTERM, silently with 143, until a handler is set, and the CLI's
handlers came only once its command's modules were imported (0.3-1 s for `aiaas serve`, more
on a loaded node, plus boto3 for an S3 store). The kubelet sends SIGTERM to a pod replaced
while it starts, and 143 reads as a crash. The console script (launch.py) sets this handler
before it imports anything else: serve says `aiaas serve: stopped` and exits 0, as a stop once
it serves; another command says `interrupted (stopped by SIGTERM)` and exits 143, as batch,
pull and rollout do once they run. It ends the process at once (os._exit): raised as an
exception it unwound through whatever import it hit, and one inside a C extension's init
(onnxruntime's) came out as another error, exit 1, or left half-made objects whose flush at
the interpreter's exit wrote a text traceback. Nothing needs cleaning up before a command
runs, and serve's functions register their exit handlers only after it takes the signals over
(infra/local/ending.py).

Ctrl-C (SIGINT) is taken the same way, `interrupted` and 130: as a KeyboardInterrupt it
crashed the process (SIGSEGV) when it landed in orjson's init, which imports modules of its
own and does not survive one failing (3 in 80 Ctrl-Cs sent during `aiaas invoke`'s imports,
tests/infra/test_cli_usage_errors.py), and one landing in code that dataclasses build with
`exec` ended `python -m infra.cli.main` by SIGINT at exit rather than 130 (fatal_lines.py).
A SIGINT ignored on purpose (a background job of a shell without job control) stays ignored.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType

from infra.cli import fatal_lines


def _stop(signum: int, frame: FrameType | None) -> None:
    command = fatal_lines.typed_command(sys.argv[1:])
    code = 0 if command == "serve" else 128 + signum
    try:  # a line that cannot be written (`aiaas serve | head`, its reader gone) still ends it
        if command == "serve":
            fatal_lines.write("aiaas serve: stopped", command=command, level=logging.INFO,
                              stream=sys.stdout)  # fmt: skip
        else:  # as fatal_lines.interrupted() says it once the command runs
            name = signal.Signals(signum).name
            said = "interrupted" if signum == signal.SIGINT else f"interrupted (stopped by {name})"
            fatal_lines.write(f"aiaas {command or ''}".rstrip() + f": {said}", command=command)
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def early_stop() -> None:
    """SIGTERM and SIGINT end the start from now on, until release_early_stop() or a command's
    own handlers take them over. One ignored on purpose stays ignored."""
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _stop)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _stop)


def release_early_stop() -> None:
    """Python's defaults again, for a command that sets no handler of its own: SIGTERM ends
    the process, Ctrl-C raises KeyboardInterrupt (which unwinds what the command wrote)."""
    if signal.getsignal(signal.SIGTERM) is _stop:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if signal.getsignal(signal.SIGINT) is _stop:
        signal.signal(signal.SIGINT, signal.default_int_handler)
