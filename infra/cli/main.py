"""`aiaas` entry point: builds the parser from each command module and maps errors to exit codes."""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import logging
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import NoReturn

from functions.runtime.errors import AiaasError, Conflict, PreconditionFailed
from functions.runtime.s3probe import probing
from infra.cli import fatal_lines
from infra.cli.arg_types import store_uri
from infra.cli.early_stop import early_stop, release_early_stop
from infra.cli.fatal_lines import typed_command
from infra.cli.help_examples import add_examples
from infra.cli.json_stderr import json_stderr
from infra.cli.misspelled import meant
from infra.cli.stop_signals import answered
from infra.extras import install_hint

# Subcommand -> the module that registers it (`register(subparsers)`; each sets `func(args)`).
# Only the chosen command's module is imported: `aiaas serve` must not pay for the batch and
# training code at start-up. `--help` and unknown commands import them all.
COMMANDS: dict[str, str] = {
    **dict.fromkeys(
        ("models", "versions", "show", "promote", "shadow", "rollback", "pull", "prune"),
        "infra.cli.registry_commands",
    ),
    "publish": "infra.cli.publish_commands",
    "serve": "infra.cli.local_commands",
    "invoke": "infra.cli.invoke_command",
    "batch": "infra.cli.batch_commands",
    **dict.fromkeys(("explain", "baseline"), "infra.cli.explain_commands"),
    "train": "infra.cli.train_commands",
    "monitor": "infra.cli.monitor_commands",
    "capture": "infra.cli.capture_commands",
    "compare": "infra.cli.compare_commands",
    "rollout": "infra.cli.rollout_commands",
}


def chosen_command(argv: Sequence[str]) -> str | None:
    """The command argv names, if it names a known one."""
    chosen = typed_command(argv)
    return chosen if chosen in COMMANDS else None


def command_modules(argv: Sequence[str]) -> list[ModuleType]:
    """The modules to register: the chosen command's, or all of them."""
    chosen = chosen_command(argv)
    names = [COMMANDS[chosen]] if chosen else list(dict.fromkeys(COMMANDS.values()))
    return [importlib.import_module(name) for name in names]


class Parser(argparse.ArgumentParser):
    """argparse's, whose usage error is one JSON line under AIAAS_LOG_FORMAT=json (a pod's
    log pipeline), the usage as a field; the subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        if not fatal_lines.json_asked():
            super().error(message)
        command = self.prog.split()[1] if " " in self.prog else None
        usage = self.format_usage().strip()
        fatal_lines.write(f"{self.prog}: error: {message}", command=command, usage=usage)
        sys.exit(EXIT_USAGE)


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

        from infra.cli.code_digest import code_digest

        try:
            print(
                f"aiaas {version('aiaas')}, code {code_digest()} (python {sys.version.split()[0]}, "
                f"onnxruntime {version('onnxruntime')}, numpy {version('numpy')})"
            )
            sys.stdout.flush()
        except BrokenPipeError:  # `aiaas --version | head -0`: as a command's output
            parser.exit(reader_gone())
        parser.exit()


EXIT_USAGE = 2
EXIT_ERROR = 1
EXIT_INTERRUPTED = fatal_lines.EXIT_INTERRUPTED
# `aiaas rollout` refused by the state it found (a 409 or 412: another rollout runs, a stale
# --if-match, nothing left to abort), changing nothing: a script reads it again, not fixes it.
EXIT_REFUSED = 3
REFUSALS = {"rollout": (Conflict, PreconditionFailed)}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = Parser(
        prog="aiaas",
        description="Train, publish and serve ONNX models: locally, or on AWS Lambda.",
    )
    parser.add_argument(
        "--store",
        type=store_uri,
        help="store URI: a directory or s3://bucket/prefix (default: $AIAAS_STORE or .aiaas/store)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log what happens; an error with its traceback"
    )
    parser.add_argument("--version", action=ShowVersion)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in command_modules(sys.argv[1:] if argv is None else argv):
        module.register(sub)
    for choice in sub._choices_actions:  # `aiaas CMD --help` opens with what CMD does
        command = sub.choices[choice.dest]
        command.description = command.description or choice.help
        add_examples(choice.dest, command)
        # `aiaas versions m --store s3://...` as well as `aiaas --store s3://... versions m`;
        # SUPPRESS: when not given here, the value given before the command stays.
        command.add_argument(
            "--store", type=store_uri, default=argparse.SUPPRESS, help="as aiaas --store"
        )
        # `aiaas train job.yaml -v` too (the short form only: `--ver...` abbreviates options
        # such as `capture export --version`).
        command.add_argument(
            "-v", dest="verbose", action="store_true", default=argparse.SUPPRESS, help="as aiaas -v"
        )
    return parser


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """parse_args, but an unknown option is the command's usage error, not the top level's:
    `aiaas batch: error: unrecognized arguments: --shardz` with batch's usage; a command's
    option given before it (`aiaas --json models`) says where it goes; a misspelled command
    (`aiaas modles`) names the one meant."""
    typed = typed_command(sys.argv[1:] if argv is None else argv)
    slip = None if typed is None or typed in COMMANDS else meant(typed, COMMANDS)
    if slip is not None:
        parser.error(f"unknown command {typed!r}; did you mean `aiaas {slip}`?")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        command = sub.choices[args.command]
        # The command's parser took each of its own options that came after it: one left
        # over came before it.
        options = command._option_string_actions
        early = [flag for flag in (u.split("=")[0] for u in unknown) if flag in options]
        if early:
            command.error(
                f"{early[0]} is an option of `aiaas {args.command}`: give it after the command "
                f"(aiaas {args.command} {early[0]} ...)"
            )
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    # onnxruntime otherwise keeps a device id and an event store under ~/.cache/Microsoft
    # (from its import on) and starts its telemetry client with the first session; the
    # functions run with it off (template.yaml's Globals). Set before a command's modules
    # import onnxruntime and before any thread starts; a value the user set is kept.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    words = sys.argv[1:] if argv is None else argv
    command = chosen_command(words)
    try:
        with json_stderr(command):  # its printed notes and warnings as JSON lines too
            return run(argv)
    except KeyboardInterrupt as exc:
        answered()  # before its line: a second signal during the exit changes nothing
        return fatal_lines.interrupted(command, exc)
    except Exception as exc:
        if not fatal_lines.json_asked():
            raise  # a bug: its traceback is the report
        # The same report, as one JSON line (errorType, stackTrace) a log pipeline keeps.
        fatal_lines.write(f"aiaas {command or ''}".rstrip() + f": error: {exc!r}",
                          command=command, exc=exc)  # fmt: skip
        return EXIT_ERROR


def run(argv: Sequence[str] | None) -> int:
    parser = build_parser(argv)
    args = parse(parser, argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if fatal_lines.json_asked():  # the command's own log lines as JSON too, as its error line:
        # a rollout's "aborted" WARNING stayed text in a pipeline reading JSON lines
        from infra.local.lambda_logs import LambdaJsonFormatter

        for handler in logging.getLogger().handlers:
            handler.setFormatter(LambdaJsonFormatter())
    if args.command != "serve":  # serve keeps it until it takes the signals over itself
        release_early_stop()
    # A stdout that cannot encode a user's names (PYTHONIOENCODING=ascii, a cp1252 console)
    # writes them escaped, as Python writes stderr: a label 'é' was a UnicodeEncodeError
    # traceback after part of the output.
    with contextlib.suppress(AttributeError, ValueError):  # not a text stream (a test's)
        sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    if sys.stdout is None:  # started with stdout closed (`>&-`): its output goes nowhere, as
        sys.stdout = Path(os.devnull).open("w")  # noqa: SIM115  (asked; it was a traceback,
        # exit 1, after the work was done)
    # The CLI's S3 clients probe an endpoint of the user's before their first request (one
    # that never answers: the connect timeout, not a 30 s read timeout); not serve's workers or
    # invoke's handler, which run the functions as Lambda does (functions/runtime/s3probe.py).
    probe = probing() if args.command not in ("serve", "invoke") else contextlib.nullcontext()
    try:
        with probe:
            code: int = args.func(args)
        answered()  # done: a stop signal now leaves the exit code as it is
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
    except OSError as exc:
        if exc.errno in PATH_ERRORS and exc.filename is not None:
            return fail(args, exc, path_error(exc))
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):  # the stores name their own
            raise
        if not stdout_full():  # a file it wrote (`train --out` on a full disk): not its output
            where = f"cannot write {exc.filename}" if exc.filename else "cannot write a file"
            return fail(args, exc, f"{where}: {exc.strerror}; free some space and run it again")
        # stdout could not be written (`> /dev/full`): a traceback after the work was done
        reader_gone()
        return fail(args, exc, f"cannot write its output ({exc.strerror}); what it did is done")
    return code


# What the OS says of a path the user gave (a file it may not read, a name too long, a folder
# where a file goes, a path through a file): their path and its fix, one line, not a traceback.
# The commands check the files they read first (file_args.py); this catches the rest (an --out
# in a folder it may not write). Others (EIO, EMFILE, ...) are not a path's: their traceback.
PATH_ERRORS = frozenset(
    (errno.EACCES, errno.EPERM, errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTDIR, errno.EISDIR,
     errno.ENXIO, errno.ENOENT, errno.EROFS)
)  # fmt: skip


def path_error(exc: OSError) -> str:
    """`PATH: Permission denied`, as `cp` and `cat` say it (`A -> B: ...` for a rename)."""
    where = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else exc.filename
    return f"{where}: {exc.strerror or type(exc).__name__}"


def stdout_full() -> bool:
    """Whether stdout has no room: /dev/full, or a file on a full disk. A command's own file on
    a full disk (a training run's checkpoint) was said as "cannot write its output ...; what it
    did is done", naming no path, when the run had failed."""
    try:
        fd = sys.stdout.fileno()
        found = os.fstat(fd)
        if stat.S_ISCHR(found.st_mode):
            return found.st_rdev == os.makedev(1, 7)  # /dev/full
        return stat.S_ISREG(found.st_mode) and os.fstatvfs(fd).f_bavail == 0
    except (OSError, ValueError, AttributeError):  # no descriptor (a test's, a closed one)
        return True


def reader_gone() -> int:
    """Output piped to a reader that stopped (`| head`): exit quietly, as Python's docs advise
    (signal module, "Note on SIGPIPE"): stdout now goes to devnull, so the flush at exit cannot
    raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_ERROR


def fail(args: argparse.Namespace, exc: BaseException, message: str) -> int:
    """One line on stderr; with -v the whole chain first, causes included."""
    line = f"aiaas {args.command}: error: {message}"
    answered()  # before the line: a stop signal once it is said left the exit -2, not 1
    fatal_lines.write(line, command=args.command, exc=exc if args.verbose else None)
    return EXIT_REFUSED if isinstance(exc, REFUSALS.get(args.command, ())) else EXIT_ERROR


if __name__ == "__main__":  # `python -m infra.cli.main`; the console script is launch.py
    early_stop()
    sys.exit(main())
