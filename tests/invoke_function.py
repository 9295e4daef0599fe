"""`python -m tests.invoke_function FUNCTION EVENT MODELS [ENV]`: one function of the stack invoked
with one event as `aiaas invoke` does (the stack's functions, their environment, a cold
start), but for the models named (comma-separated) rather than listed from the store, so the
store sees the function's requests and nothing else (tests/infra/test_function_role_requests.py).
ENV: a JSON object of variables for the function, as `aiaas invoke --env-vars` gives them.
Prints the function's response as one JSON line; its logs go to stderr.

`python -m tests.invoke_function --serve`: the same, once per request line read from stdin
(`{"argv": [...], "env": {...}, "out": FILE, "err": FILE}`), each in a process forked from
this one, which holds what the single run's process held before `main` (this module's imports)
and has imported numpy, boto3 and FastAPI and parsed botocore's service models, but never a
handler's module: each run is still its function's cold start, without the ~1 CPU-s a new
interpreter spends importing those again. Answers a line
`{"rc": EXIT_CODE}` per request."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, NoReturn

from infra.cli.local_commands import local_overrides
from infra.cli.serve_discovery import template_functions
from infra.local.functions import LocalFunction, export_native_settings, local_environment
from infra.local.stack import GLOBAL_ENVIRONMENT


def main(argv: list[str]) -> int:
    name, event, models, *extra = argv
    export_native_settings(GLOBAL_ENVIRONMENT)
    store = os.environ["AIAAS_STORE"]
    spec = template_functions(None, store, models.split(","))[name]
    env = local_overrides(store, json.loads(extra[0]) if extra else None)
    with contextlib.redirect_stdout(sys.stderr):
        function = LocalFunction(spec, local_environment(spec, env))
        answer = function.invoke(json.loads(Path(event).read_text(encoding="utf-8")))
    print(json.dumps(answer))
    return 0


def _prepared() -> None:
    """What every run imports and reads first, none of it a function's: numpy, boto3 (its
    service models parsed once, as tests/conftest.py shares them) and the control extra
    (onnxruntime comes with this module's own imports, as it did before each run)."""
    import functools

    import boto3
    import botocore.session
    import numpy  # noqa: F401
    import yaml  # noqa: F401

    with contextlib.suppress(ImportError):
        import fastapi  # noqa: F401
        import mangum  # noqa: F401
    botocore.session.create_loader = functools.cache(botocore.session.create_loader)
    for service in ("s3", "stepfunctions", "cloudwatch"):
        boto3.session.Session().client(
            service, region_name="us-east-1", endpoint_url="http://127.0.0.1:9"
        )


def _run_forked(request: dict[str, Any]) -> int:
    """`main` on the request, in a child with the request's environment and output files."""
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.environ.clear()
            os.environ.update(request["env"])
            for fd, path in ((1, request["out"]), (2, request["err"])):
                target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(target, fd)
                os.close(target)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            code = main(request["argv"])
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        except BaseException:
            traceback.print_exc()
        _exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _exit(code: int) -> NoReturn:
    """End as an interpreter ends, up to its C++ teardown: its threads joined, then its exit
    handlers (the predict function's last drift, capture and metrics flush), then its output
    flushed. Not past that: onnxruntime, imported before the fork, aborts in its static
    destructors in a forked child (std::system_error), where nothing is left to send."""
    try:
        threading._shutdown()  # type: ignore[attr-defined]  # what Py_FinalizeEx calls first
        atexit._run_exitfuncs()
    except BaseException:
        traceback.print_exc()
        code = code or 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> int:
    _prepared()
    for line in sys.stdin:
        print(json.dumps({"rc": _run_forked(json.loads(line))}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1:] == ["--serve"] else main(sys.argv[1:]))
