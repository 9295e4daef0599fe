"""`aiaas` entry point: builds the parser from each command module and maps errors to exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from functions.runtime.errors import AiaasError
from infra.cli import batch_commands, local_commands, registry_commands, train_commands

# Each module has `register(subparsers)`; subcommands set `func(args) -> int`.
COMMAND_MODULES: list[ModuleType] = [
    registry_commands,
    local_commands,
    batch_commands,
    train_commands,
]

EXIT_USAGE = 2
EXIT_ERROR = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiaas",
        description="Train, publish and serve ONNX models: locally, or on AWS Lambda.",
    )
    parser.add_argument(
        "--store",
        help="store URI: a directory or s3://bucket/prefix (default: $AIAAS_STORE or .aiaas/store)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.func(args)
    except AiaasError as exc:
        print(f"aiaas {args.command}: error: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
