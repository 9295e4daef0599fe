"""`aiaas` entry point: builds the parser from each command module and maps errors to exit codes."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from functions.runtime.errors import AiaasError
from infra.extras import install_hint

# Subcommand -> the module that registers it (`register(subparsers)`; each sets `func(args)`).
# Only the chosen command's module is imported: `aiaas serve` must not pay for the batch and
# training code at start-up. `--help` and unknown commands import them all.
COMMANDS: dict[str, str] = {
    **dict.fromkeys(
        ("models", "versions", "show", "promote", "shadow", "rollback", "pull"),
        "infra.cli.registry_commands",
    ),
    "publish": "infra.cli.publish_commands",
    **dict.fromkeys(("serve", "invoke"), "infra.cli.local_commands"),
    "batch": "infra.cli.batch_commands",
    **dict.fromkeys(("explain", "baseline"), "infra.cli.explain_commands"),
    "train": "infra.cli.train_commands",
    "monitor": "infra.cli.monitor_commands",
    "capture": "infra.cli.capture_commands",
    "compare": "infra.cli.compare_commands",
    "rollout": "infra.cli.rollout_commands",
}


def command_modules(argv: Sequence[str]) -> list[ModuleType]:
    """The modules to register: the chosen command's, or all of them."""
    # The command is the first positional argument: skip the value of `--store VALUE`.
    args = [a for i, a in enumerate(argv) if not (i > 0 and argv[i - 1] == "--store")]
    chosen = next((arg for arg in args if not arg.startswith("-")), None)
    if chosen not in COMMANDS:
        chosen = None
    names = [COMMANDS[chosen]] if chosen else list(dict.fromkeys(COMMANDS.values()))
    return [importlib.import_module(name) for name in names]


class ShowVersion(argparse.Action):
    """`--version`: read from the installed distribution only when asked (no import cost)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from importlib import metadata

        def version(name: str) -> str:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                return "not installed"

        print(
            f"aiaas {version('aiaas')} (python {sys.version.split()[0]}, "
            f"onnxruntime {version('onnxruntime')}, numpy {version('numpy')})"
        )
        parser.exit()


EXIT_USAGE = 2
EXIT_ERROR = 1


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiaas",
        description="Train, publish and serve ONNX models: locally, or on AWS Lambda.",
    )
    parser.add_argument(
        "--store",
        help="store URI: a directory or s3://bucket/prefix (default: $AIAAS_STORE or .aiaas/store)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    parser.add_argument("--version", action=ShowVersion)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in command_modules(sys.argv[1:] if argv is None else argv):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # here, so a reader that went away is caught below, not at exit
    except BrokenPipeError:
        return reader_gone()
    except AiaasError as exc:
        return fail(args, exc, install_hint(exc) or exc.message)
    except ModuleNotFoundError as exc:
        # A package of an optional extra (torch, boto3, ...): say which extra to install.
        hint = install_hint(exc)
        if hint is None:
            raise  # a module of aiaas itself: a bug, whose traceback is the report
        return fail(args, exc, hint)
    except KeyboardInterrupt:
        return 130
    return code


def reader_gone() -> int:
    """Output piped to a reader that stopped (`| head`): exit quietly, as Python's docs advise
    (signal module, "Note on SIGPIPE"): stdout now goes to devnull, so the flush at exit cannot
    raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_ERROR


def fail(args: argparse.Namespace, exc: BaseException, message: str) -> int:
    """One line on stderr; with -v the whole chain first, causes included."""
    if args.verbose:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"aiaas {args.command}: error: {message}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
