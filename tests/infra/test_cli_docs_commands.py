"""Every `aiaas ...` command the docs and --help examples show still parses with the CLI as it is (parser only:
nothing runs), and every option an inline `aiaas CMD --opt` mention names exists: docs
cannot drift from the CLI."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.cli.help_examples import EXAMPLES
from infra.cli.main import build_parser

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", REPO / "training" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_OPERATORS = {"|", "||", "&", "&&", ";", ">", ">>", "<", "(", ")"}
# `[--bins 10]` is optional, `[--png FILE | --no-png]` a choice: keep the first alternative.
CHOICE = re.compile(r"\[([^\[\]|]*?)\s*\|[^\[\]]*\]")
OPTIONAL = re.compile(r"(?<!\S)\[([^\[\]]*)\]")
PLACEHOLDER = re.compile(r"<([A-Za-z][\w.-]*)>")  # `<TrainingJobQueueArn>`, not a redirection
INDENTED = re.compile(r"^ {4,}(\$ )?aiaas ")  # a Markdown code block made by indenting
ARRAY = re.compile(
    r"^\$\{\w+\[@\]\}$"
)  # "${SEEN[@]}": options a script built (docs/rollout.md, CI/CD)


def fenced_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, logical line) of code: in ``` blocks or indented, `\\` continuations joined."""
    inside, pending, start = False, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            inside, pending = not inside, ""
            continue
        if not inside and not pending and not INDENTED.match(line):
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield start, pending + line
        pending = ""


def aiaas_words(line: str) -> list[str] | None:
    """The arguments after `aiaas` when the line runs it as a shell command, else None."""
    line = OPTIONAL.sub(r"\1", CHOICE.sub(r"[\1]", PLACEHOLDER.sub(r"\1", line)))
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True  # `#` starts a comment, as in a shell
    try:
        words = list(lexer)
    except ValueError:  # not shell (an unbalanced quote in prose or JSON)
        return None
    at_command = True
    for i, word in enumerate(words):
        if word == "$" and at_command:
            continue  # a prompt
        if at_command and word == "aiaas":
            rest = words[i + 1 :]
            end = next((j for j, w in enumerate(rest) if w in SHELL_OPERATORS), len(rest))
            if 0 < end < len(rest) and rest[end] in {">", ">>"} and rest[end - 1].isdigit():
                end -= 1  # `2> /dev/null`: shlex splits the descriptor off its redirection
            return [word for word in rest[:end] if not ARRAY.match(word)]
        at_command = word in SHELL_OPERATORS or (
            at_command and re.match(r"^\w+=", word) is not None
        )
    return None


def documented_commands() -> list[tuple[str, list[str]]]:
    found = []
    for doc in DOCS:
        for number, line in fenced_lines(doc.read_text()):
            words = aiaas_words(line)
            if words is not None:
                found.append((f"{doc.relative_to(REPO)}:{number}", words))
    return found


def inline_mentions() -> list[tuple[str, str, list[str]]]:
    """(where, command, --options) of each `aiaas COMMAND ... --opt` in prose."""
    found = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            for span in re.findall(r"`aiaas ([a-z]+)([^`]*)`", line):
                options = re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", span[1])
                if options:
                    found.append((f"{doc.relative_to(REPO)}:{number}", span[0], options))
    return found


def help_examples() -> list[tuple[str, list[str]]]:
    """The examples `aiaas COMMAND --help` shows."""
    found = []
    for command, lines in EXAMPLES.items():
        for line in lines:
            words = aiaas_words(line)
            assert words is not None, line
            found.append((f"aiaas {command} --help", words))
    return found


PARSER = build_parser(["--help"])
COMMANDS = documented_commands() + help_examples()


def parse_error(argv: list[str]) -> str | None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            PARSER.parse_args(argv)
        except SystemExit as stop:
            if stop.code:
                return err.getvalue().strip().splitlines()[-1]
    return None


def test_the_docs_show_commands_to_check() -> None:
    # Guards the extraction itself: a regex that found nothing would pass every doc.
    assert len(COMMANDS) > 90
    assert {words[0] for _, words in COMMANDS if words} >= {"publish", "serve", "batch", "rollout"}


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_a_documented_command_parses(where: str, argv: list[str]) -> None:
    assert parse_error(argv) is None, f"{where}: aiaas {shlex.join(argv)}"


def subcommand(name: str) -> argparse.ArgumentParser:
    action = next(a for a in PARSER._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = action.choices[name]
    return parser


def test_options_named_in_prose_exist() -> None:
    top = set(PARSER._option_string_actions)
    unknown = [
        f"{where}: aiaas {command} {option}"
        for where, command, options in inline_mentions()
        for option in options
        if option not in top and option not in subcommand(command)._option_string_actions
    ]
    assert unknown == []


def test_the_readme_gives_the_exit_codes_and_the_json_commands() -> None:
    from infra.cli.main import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_REFUSED, EXIT_USAGE

    readme = (REPO / "README.md").read_text()
    section = readme.split("## The CLI in scripts", 1)[1].split("\n## ", 1)[0]
    for code in (0, EXIT_ERROR, EXIT_USAGE, EXIT_REFUSED, EXIT_INTERRUPTED):
        assert f"\n| {code} | " in section
    with_json = [
        name for name in sorted(EXAMPLES) if "--json" in subcommand(name)._option_string_actions
    ]
    assert [name for name in with_json if f"`{name}" not in section] == []
