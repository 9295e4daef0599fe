"""What a script sees of a misused or interrupted `aiaas`: the command's own usage error, what
each command does in its --help, and Ctrl-C as exit 130 with one line, nothing half-published."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from infra.cli.main import EXIT_INTERRUPTED, build_parser, main
from tests import onnx_factory
from tests.batch_support import publish_classifier

REPO = Path(__file__).resolve().parents[2]


def default_sigint() -> None:
    """In the child before exec: Ctrl-C as in a terminal, even when this test runs in a
    background job (whose shell ignores SIGINT, and children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser(["--help"])
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_an_unknown_option_is_the_command_s_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # argparse said "aiaas: error: unrecognized arguments" under the top level's usage, which
    # does not list batch's options.
    with pytest.raises(SystemExit) as stop:
        main(["batch", "m", "rows.csv", "--shardz", "4"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: aiaas batch ")
    assert err.strip().splitlines()[-1] == "aiaas batch: error: unrecognized arguments: --shardz 4"


@pytest.mark.parametrize(
    "argv",
    [
        ["versions", "m", "--store", "s3://b/r"],
        ["--store", "s3://b/r", "versions", "m"],
        ["--store", "elsewhere", "versions", "m", "--store", "s3://b/r"],
    ],
)
def test_store_may_follow_the_command(argv: list[str]) -> None:
    # `aiaas versions m --store s3://...` was "unrecognized arguments: --store".
    assert build_parser(argv).parse_args(argv).store == "s3://b/r"


def test_store_given_nowhere_is_none_for_the_default() -> None:
    assert build_parser(["models"]).parse_args(["models"]).store is None


@pytest.mark.parametrize(
    ("argv", "verbose"),
    [(["-v", "models"], True), (["models", "-v"], True), (["models"], False)],
)
def test_v_may_follow_the_command(argv: list[str], verbose: bool) -> None:
    # docs/install.md: "one line (`-v` shows the traceback)"; `aiaas train job.yaml -v`, where a reader
    # adds it after the failing command, was "unrecognized arguments: -v", exit 2.
    assert build_parser(argv).parse_args(argv).verbose is verbose


def test_v_after_the_command_shows_the_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--store", str(tmp_path), "show", "nosuch", "-v"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith(
        "aiaas show: error: model 'nosuch' not found"
    )


def test_each_command_s_help_says_what_it_does() -> None:
    # `aiaas versions --help` showed only the usage and the arguments.
    bare = [name for name, parser in subcommands().items() if not parser.description]
    assert bare == []


def test_every_default_is_shown_in_the_help() -> None:
    # `compare --max-rows` compared at most 100000 rows without saying so.
    unsaid = [
        f"{name} {action.option_strings[0]}"
        for name, parser in subcommands().items()
        for action in parser._actions
        if action.option_strings
        and action.default not in (None, False, "", argparse.SUPPRESS)
        and "default" not in (action.help or "")
        and f"({action.default})".replace(".0)", ")") not in (action.help or "")  # "waits (900)"
    ]
    assert unsaid == []


def test_each_command_s_help_ends_with_examples() -> None:
    # (each example is run through the parser by test_cli_docs_commands.py)
    helps = {name: parser.format_help() for name, parser in subcommands().items()}
    assert [name for name, text in helps.items() if "\nexamples:\n  aiaas " not in text] == []
    assert (
        "\n  aiaas promote iris 3 --weight 0.1    # canary" in helps["promote"]
    )  # kept as written


def publish(store: Path, model: Path) -> subprocess.Popen[str]:
    argv = ["-m", "infra.cli.main", "--store", str(store), "publish", str(model), "--name", "big"]
    return subprocess.Popen(
        [sys.executable, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        preexec_fn=default_sigint,
    )


def test_ctrl_c_while_the_command_imports_is_one_line_and_130() -> None:
    # It was a KeyboardInterrupt traceback: only the command's run was guarded. `invoke -e -`
    # then waits on stdin, so the signal lands in the imports or in that wait, never after.
    process = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "infra.cli.main", "invoke", "Health", "-e", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        preexec_fn=default_sigint,
    )
    assert process.stderr is not None
    for line in process.stderr:  # main() has begun importing the invoke command's modules
        if line.rstrip().endswith("functions.runtime.names"):
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert (process.returncode, out) == (EXIT_INTERRUPTED, "")
    assert "Traceback" not in err and err.splitlines()[-1:] == ["aiaas invoke: interrupted"]


# A command's run that imports a module a Ctrl-C cuts in code built by `exec` of a string (as
# dataclasses build their methods), run as `python -m`.
CUT_IN_EXEC = """
import importlib, sys
import infra.cli.main as cli
cli.run = lambda argv: importlib.import_module("cut_module")
if __name__ == "__main__":
    sys.exit(cli.main(["models"]))
"""


def test_ctrl_c_caught_from_generated_code_still_exits_130(tmp_path: Path) -> None:
    # CPython marks a KeyboardInterrupt leaving an `exec` of a string as unhandled though
    # main() handles it, and `python -m` then ended by SIGINT at exit: -2, not 130.
    (tmp_path / "cut_module.py").write_text('exec("raise KeyboardInterrupt")\n')
    (tmp_path / "cut_driver.py").write_text(CUT_IN_EXEC)
    done = subprocess.run(
        [sys.executable, "-m", "cut_driver"],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])},
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        EXIT_INTERRUPTED, "", "aiaas models: interrupted\n",
    )  # fmt: skip


def test_ctrl_c_during_a_publish_is_one_line_130_and_nothing_published(tmp_path: Path) -> None:
    # Exit 130 with nothing said; a script's log showed no reason.
    store = tmp_path / "store"
    process = publish(store, onnx_factory.big_add(tmp_path / "big.onnx", 25_000_000))  # 100 MB
    deadline = time.monotonic() + 60
    while not any((store / "models").rglob(".tmp-*")):  # the copy is under way
        assert process.poll() is None, "it ended before it was interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert (process.returncode, out, err) == (EXIT_INTERRUPTED, "", "aiaas publish: interrupted\n")
    assert (
        not (store / "models").exists()
        or [p for p in (store / "models").rglob("*") if p.is_file()] == []
    )


def test_ctrl_c_during_a_sharded_batch_leaves_no_work_and_no_worker_tracebacks(
    tmp_path: Path,
) -> None:
    # The terminal sends Ctrl-C to the whole process group: each pool worker printed a
    # KeyboardInterrupt traceback, and the run's work folder (plan, parts) stayed behind.
    store = LocalStore(tmp_path / "store")
    publish_classifier(store, tmp_path)
    rows = tmp_path / "rows.npy"
    np.save(rows, np.random.default_rng(0).normal(size=(2_000_000, 4)).astype(np.float32))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infra.cli.main",
            "--store",
            store.uri,
            "batch",
            "iris",
            str(rows),
            "--shards",
            "2",
            "--no-progress",  # a loaded machine takes over 2 s to get here: a progress line
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO), "AIAAS_CACHE_DIR": str(tmp_path / "cache")},
        start_new_session=True,  # its own process group, as a terminal's foreground job
        preexec_fn=default_sigint,
    )
    work = tmp_path / "store" / "batch" / "iris" / "work"
    deadline = time.monotonic() + 60
    while not any(work.rglob(".tmp-*part-*")):  # a worker is writing its shard's part
        assert process.poll() is None, "it ended before it was interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert (process.returncode, err) == (EXIT_INTERRUPTED, "aiaas batch: interrupted\n")
    assert [p for p in work.rglob("*") if p.is_file()] == []
