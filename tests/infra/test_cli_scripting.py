"""`aiaas` as a shell script drives it: a typo'd command, a command's option given before it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from infra.cli.main import main
from tests import onnx_factory


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as stop:
        main(list(argv))
    assert stop.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("typed", "meant"), [("modles", "models"), ("versoins", "versions"), ("rollut", "rollout")]
)
def test_a_misspelled_command_is_told_the_one_meant(
    capsys: pytest.CaptureFixture[str], typed: str, meant: str
) -> None:
    # argparse listed all 18 commands and left the user to spot the one they meant.
    said = usage_error(capsys, "--store", "s", typed, "iris")
    assert said == f"aiaas: error: unknown command {typed!r}; did you mean `aiaas {meant}`?"


def test_an_unknown_command_with_no_near_one_lists_the_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    said = usage_error(capsys, "zzz")
    assert "invalid choice: 'zzz' (choose from 'models', " in said


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ["--json", "models"],
            "aiaas models: error: --json is an option of `aiaas models`: "
            "give it after the command (aiaas models --json ...)",
        ),
        (
            ["--alias=canary", "promote", "m", "1"],
            "aiaas promote: error: --alias is an option of "
            "`aiaas promote`: give it after the command (aiaas promote --alias ...)",
        ),
    ],
)
def test_a_command_s_option_before_the_command_says_where_it_goes(
    capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    # It said "aiaas models: error: unrecognized arguments: --json", yet `aiaas models --help`
    # lists --json: the user could not tell what was wrong.
    assert usage_error(capsys, *argv) == said


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["promote", "iris@staging", "3"], "aiaas promote iris 3 --alias staging"),
        (["rollback", "iris@staging"], "aiaas rollback iris --alias staging"),
        (["shadow", "iris@canary", "2"], "aiaas shadow iris 2 --alias canary"),
    ],
)
def test_an_alias_command_given_name_at_alias_says_the_form_it_takes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], hint: str
) -> None:
    # `aiaas show iris@staging` works, so a user writes `aiaas promote iris@staging 3`: it said
    # only "invalid model name 'iris@staging'", as if the name itself were wrong.
    assert main(["--store", str(tmp_path / "store"), *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"aiaas {argv[0]}: error: invalid model name '{argv[1]}'")
    assert err.endswith(f"; give the alias with --alias: {hint}")


def test_versions_of_a_model_with_no_alias_prints_one_line_a_version(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A blank line followed the versions (the empty alias history): `aiaas versions m | while
    # read v _` ran once more with an empty version.
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    store = ["--store", str(tmp_path / "store")]
    for _ in range(2):
        assert main([*store, "publish", str(model), "--name", "m"]) == 0
    capsys.readouterr()
    assert main([*store, "versions", "m"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["1", "2"]


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["rollout", "statsu", "iris"], "did you mean: aiaas rollout status iris"),
        (["capture", "exprot", "iris"], "did you mean: aiaas capture export iris"),
    ],
)
def test_a_misspelled_second_word_is_told_the_one_meant(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], hint: str
) -> None:
    # `aiaas rollout statsu iris` said "version 'iris' of model 'statsu' not found".
    assert main(["--store", str(tmp_path / "store"), *argv]) == 1
    assert capsys.readouterr().err.rstrip().endswith(hint)


class ClosedPipe:
    """stdout piped to a reader that has gone (`aiaas --version | head -0`)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        return self.fd


def test_version_to_a_reader_that_has_gone_ends_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # It ended in a BrokenPipeError traceback, as no other command does.
    fd = os.open(os.devnull, os.O_WRONLY)
    try:
        monkeypatch.setattr(sys, "stdout", ClosedPipe(fd))
        with pytest.raises(SystemExit) as stop:
            main(["--version"])
    finally:
        os.close(fd)
    assert stop.value.code == 1  # as `aiaas versions m | head -1`
    assert capsys.readouterr().err == ""


def test_deployed_on_a_directory_store_says_nothing_will_score_it_on_its_own(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # `aiaas batch iris rows.csv --deployed` on the default directory store said "output will
    # appear at ...": a directory store sends no events, so none appeared, and --wait waited
    # its 900 s for nothing.
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    store = ["--store", str(tmp_path / "store")]
    assert main([*store, "publish", str(model), "--name", "iris"]) == 0
    rows = tmp_path / "rows.csv"
    rows.write_text("x_0,x_1,x_2,x_3\n1,2,3,4\n")
    capsys.readouterr()
    assert main([*store, "batch", "iris", str(rows), "--deployed"]) == 0
    err = capsys.readouterr().err
    assert "a directory store sends no events: nothing scores it until " in err
    assert f"`aiaas batch iris {rows}` (without --deployed)" in err
    # With --name the hint kept the file's own name: that command scored `rows.csv` and left
    # `day/dep.csv` pending.
    assert main([*store, "batch", "iris", str(rows), "--name", "day/dep.csv", "--deployed"]) == 0
    err = capsys.readouterr().err
    assert f"`aiaas batch iris {rows} --name day/dep.csv` (without --deployed)" in err


def test_a_misspelled_action_is_not_echoed_with_a_bad_model_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The hint repeated the second word as typed: from a script, an ESC sequence in it reached
    # the terminal (and no command with an invalid model name is worth suggesting).
    argv = ["capture", "exprot", "\x1b]0;pwned\x07"]
    assert main(["--store", str(tmp_path / "store"), *argv]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "did you mean" not in err
