"""The CLI imports only the chosen command's module, and still lists every command in --help."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import infra
from infra.cli.code_digest import PACKAGES, code_digest
from infra.cli.main import COMMANDS, command_modules, main
from tests import onnx_factory

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["serve", "--port", "1"], ["infra.cli.local_commands"]),
        (["--store", "models", "train", "spec.yaml"], ["infra.cli.train_commands"]),
        (["-v", "show", "x"], ["infra.cli.registry_commands"]),
    ],
)
def test_only_the_chosen_commands_module_is_registered(
    argv: list[str], expected: list[str]
) -> None:
    assert [m.__name__ for m in command_modules(argv)] == expected


@pytest.mark.parametrize("argv", [[], ["--help"], ["nope"]])
def test_help_and_unknown_commands_register_everything(argv: list[str]) -> None:
    assert {m.__name__ for m in command_modules(argv)} == set(COMMANDS.values())


def test_serve_does_not_import_batch_or_training_code() -> None:
    code = (
        "import sys; from infra.cli.main import build_parser; build_parser(['serve']);"
        "print(sorted(m for m in sys.modules if m.startswith(('training', 'functions.batch', 'torch'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["nope"])
    assert exit_.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_every_command_and_argument_has_help() -> None:
    """`aiaas COMMAND --help` explains every argument: none is left bare."""
    import argparse

    from infra.cli.main import build_parser

    bare: list[str] = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {a.dest: a.help for a in action._choices_actions}
                for name, sub in action.choices.items():
                    if not helps.get(name):
                        bare.append(f"{path} {name}")
                    walk(sub, f"{path} {name}")
            elif not action.help:
                bare.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(["--help"]), "aiaas")
    assert bare == []


def test_version_names_the_package_and_runtime(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib import metadata

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"aiaas {metadata.version('aiaas')}, code {code_digest()} (python ")
    assert f"onnxruntime {metadata.version('onnxruntime')}" in out


def test_the_code_digest_tells_two_releases_of_one_version_apart(tmp_path: Path) -> None:
    """Every release is 0.1.0, and pip keeps an installed wheel of the same version ("already
    installed with the same version as the provided wheel", exit 0): after such an "upgrade"
    `--version` said 0.1.0 as before, the older code still serving. The digest is of the code."""
    for package in PACKAGES:
        (tmp_path / package / "sub").mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "sub" / "mod.py").write_text(f"NAME = {package!r}\n")
    before = code_digest(tmp_path)
    (tmp_path / "infra" / "sub" / "__pycache__").mkdir()
    (tmp_path / "infra" / "sub" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "tests.py").write_text("")  # outside the packages
    assert code_digest(tmp_path) == before
    (tmp_path / "training" / "sub" / "mod.py").write_text("NAME = 'changed'\n")
    changed = code_digest(tmp_path)
    assert changed != before
    (tmp_path / "training" / "sub" / "mod.py").rename(tmp_path / "training" / "sub" / "moved.py")
    assert code_digest(tmp_path) not in (before, changed)
    assert len(before) == 12 and int(before, 16) >= 0
    assert code_digest() == code_digest(Path(infra.__file__).resolve().parent.parent)


def test_output_piped_to_a_reader_that_stops_ends_quietly(tmp_path: Path) -> None:
    # `aiaas explain --file rows.npy | head -1`: the output (about 300 KB) outlasts the pipe's
    # buffer, so writes go on after head has gone; the user sees head's line, no traceback.
    store = tmp_path / "store"
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    assert (
        main(["--store", str(store), "publish", str(model), "--name", "m", "--labels", "a,b,c"])
        == 0
    )
    np.save(tmp_path / "rows.npy", np.random.default_rng(0).normal(size=(1000, 4)).astype("f4"))
    assert main(["--store", str(store), "baseline", "m", str(tmp_path / "rows.npy")]) == 0
    script = Path(sys.executable).with_name("aiaas")  # the console script a user runs
    entry = shlex.quote(str(script)) if script.exists() else f"{sys.executable} -m infra.cli.main"
    for command in (f"explain m --file {tmp_path / 'rows.npy'}", "versions m"):
        piped = subprocess.run(
            ["bash", "-c", f"set -o pipefail; {entry} --store {store} {command} | head -1"],
            capture_output=True,
            text=True,
            env=os.environ | {"PYTHONPATH": str(REPO)},
            timeout=120,
            check=False,
        )
        assert piped.stderr == "", piped.stderr
        assert piped.stdout.count("\n") == 1
        # What a shell sees of the writer: 1 (Python's status for a closed pipe), or 0 when
        # everything fitted in the pipe before head exited.
        assert piped.returncode in (0, 1)


def test_a_store_error_is_one_line_and_its_causes_come_with_v(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "models").write_bytes(b"a file where a folder should be")
    argv = ["--store", str(tmp_path / "store"), "promote", "m", "1", "--alias", "production"]
    assert main(argv) == 1
    _, err = capsys.readouterr()
    assert err.strip().splitlines() == [
        f"aiaas promote: error: cannot use 'models/m/aliases/production.json' under "
        f"{tmp_path / 'store'}: Not a directory ('models' is a file where a folder should be)"
    ]
    assert main(["-v", *argv]) == 1
    _, err = capsys.readouterr()
    assert "Traceback" in err and "NotADirectoryError" in err


def test_capture_usage_gives_its_two_forms(capsys: pytest.CaptureFixture[str]) -> None:
    # argparse's own usage line read "MODEL | export MODEL [MODEL | export MODEL ...]".
    with pytest.raises(SystemExit):
        main(["capture", "--help"])
    usage = capsys.readouterr().out.split("\n\n")[0].splitlines()
    assert usage == [
        "usage: aiaas capture MODEL [--sample S | --off] [--deny FIELDS]   (no option: show it)",
        "       aiaas capture export MODEL --out FILE.csv|.jsonl [--version V] [--since "
        "YYYY-MM-DD] [--exact]",
    ]


def test_onnxruntime_keeps_no_telemetry_files_in_the_users_home(tmp_path: Path) -> None:
    # onnxruntime writes $XDG_CACHE_HOME (or ~/.cache)/Microsoft/.../deviceid and an event
    # database from its import on unless ORT_DISABLE_TELEMETRY is set: the CLI sets it.
    home = tmp_path / "home"
    home.mkdir()
    model = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    published = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra.cli.main",
            "--store",
            str(tmp_path / "store"),
            "publish",
            str(model),
            "--name",
            "m",
            "--labels",
            "a,b,c",
        ],
        capture_output=True,
        text=True,
        env=env
        | {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "PYTHONPATH": str(REPO)},
        timeout=120,
        check=False,
    )
    assert published.returncode == 0, published.stderr
    assert [p.relative_to(home) for p in home.rglob("*") if p.is_file()] == []
