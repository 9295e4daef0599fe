"""`python -m tests.invoke_function FUNCTION EVENT MODELS [ENV]`: one function of the stack invoked
with one event as `aiaas invoke` does (the stack's functions, their environment, a cold
start), but for the models named (comma-separated) rather than listed from the store, so the
store sees the function's requests and nothing else (tests/infra/test_function_role_requests.py).
ENV: a JSON object of variables for the function, as `aiaas invoke --env-vars` gives them.
Prints the function's response as one JSON line; its logs go to stderr."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
