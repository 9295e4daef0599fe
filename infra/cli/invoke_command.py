"""`aiaas invoke FUNCTION -e EVENT`: one template function, one event, like `sam local invoke`."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from functions.runtime.errors import AiaasError, BadRequest, NotFound
from functions.runtime.store import open_store
from infra.cli.local_commands import local_overrides
from infra.cli.serve_discovery import template_functions
from infra.local.functions import LocalFunction, export_native_settings, local_environment
from infra.local.stack import GLOBAL_ENVIRONMENT
from infra.template import functions, load_template


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "invoke", help="invoke one template function with an event, like `sam local invoke`"
    )
    p.add_argument(
        "function",
        help="logical id in template.yaml, e.g. Health, or Predict<model> for a model published "
        "in the store (Predictdigitsmlp for digits-mlp)",
    )
    p.add_argument("-e", "--event", required=True, help="event JSON file ('-' for stdin)")
    p.add_argument(
        "--env-vars",
        type=Path,
        metavar="FILE",
        help='a JSON file, as sam local invoke takes: {"Function": {"VAR": "value"}} or '
        '{"Parameters": {...}}',
    )
    p.add_argument(
        "--template",
        type=Path,
        help="read functions from this SAM template (default: the built-in copy of the project's)",
    )
    p.set_defaults(func=cmd_invoke)


def _read_event(source: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        where = ""
        if Path(source).parts[:1] == ("events",):  # README's golden events, named from elsewhere
            where = (
                "; the golden events/ come with the aiaas source (a clone), not with the "
                "installed package: give that file's path, or '-' to read an event from stdin"
            )
        raise BadRequest(f"cannot read event {source}: {exc.strerror}{where}") from exc
    except OSError as exc:
        raise BadRequest(f"cannot read event {source}: {exc}") from exc
    except UnicodeDecodeError as exc:  # a binary or UTF-16 file given as the event
        raise BadRequest(f"event {source} is not UTF-8 JSON (byte {exc.start + 1})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"event {source} is not valid JSON: {exc}") from exc


def read_env_vars(path: Path) -> dict[str, Any]:
    """`--env-vars FILE` (SAM's format); what is wrong with it said in one line."""
    example = '{"Predictiris": {"POWERTOOLS_LOG_LEVEL": "DEBUG"}}'
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadRequest(
            f"--env-vars {str(path)[:80]!r}: no such file; it takes a JSON file (as sam local "
            f"invoke does), e.g. one holding {example}"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"--env-vars {path}: not a readable JSON file ({exc})") from None
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise BadRequest(
            f"--env-vars {path}: expected an object of objects, e.g. {example}; "
            f"got {type(value).__name__}"
        )
    return value


def cmd_invoke(args: argparse.Namespace) -> int:
    export_native_settings(GLOBAL_ENVIRONMENT)  # single-threaded yet
    store_uri = open_store(args.store).uri
    env_file = read_env_vars(args.env_vars) if args.env_vars else {}
    # A function of the stack itself needs no listing of the store's models (the health
    # function's own 503 is what an unreachable store should show, not the listing's error).
    specs = template_functions(args.template, store_uri, models=[])
    if args.function not in specs:  # a Predict<model>: one per model in the store
        specs = template_functions(args.template, store_uri)
    if args.template is not None:  # the template's own ModelNames too
        specs = {**functions(load_template(args.template)), **specs}
    spec = specs.get(args.function)
    if spec is None:
        where = args.template or "the stack"
        raise NotFound(no_function(args.function, sorted(specs), where, store_uri))
    extra = {**env_file.get("Parameters", {}), **env_file.get(args.function, {})}
    # As `sam local invoke`: the function's logs and metrics go to stderr and only the response
    # to stdout, so `aiaas invoke ... | jq` works.
    with contextlib.redirect_stdout(sys.stderr):
        function = LocalFunction(spec, local_environment(spec, local_overrides(store_uri, extra)))
        try:
            result = function.invoke(_read_event(args.event))
        except AiaasError:
            raise
        except Exception as exc:  # the handler raised: Lambda fails the invocation
            raise AiaasError(f"{args.function} failed the invocation: {_raised(exc)}") from exc
    print(json.dumps(result, indent=2))
    return 0


def no_function(name: str, known: list[str], where: str, store_uri: str) -> str:
    """Why FUNCTION is not there, and for a predict function what to do: there is one for each
    model in the store (as `sam deploy` makes one for each of the stack's ModelNames), so
    `Predictdigitsmlp` exists once digits-mlp is published, not because template.yaml names it."""
    said = f"no function {name!r} in {where}; functions: {', '.join(known)}"
    if name.startswith("Predict"):
        said += (
            f". A Predict<model> function serves each model published in the store ({store_uri}): "
            "publish the model first (e.g. `aiaas train training/specs/digits-mlp.yaml --publish` "
            "for Predictdigitsmlp) or name its store with --store"
        )
    return said


def _raised(exc: Exception) -> str:
    """What a handler's exception says, in one line (-v shows its traceback). Powertools
    raises when every SQS message of a batch failed; its text promises tracebacks "below"."""
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    if isinstance(exc, BatchProcessingError):
        return (
            "every message of the SQS batch failed (each one's reason is logged above), "
            "so Lambda returns them all to the queue"
        )
    first = str(exc).strip().splitlines()[:1]
    return f"{type(exc).__name__}: {first[0]}" if first else type(exc).__name__
