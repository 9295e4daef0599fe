"""`aiaas rollout` refused by the state it found exits 3, not 1, so a script can tell "someone
else moved it" (read it again, perhaps retry) from "broken" (fix something): a stale
--if-match, --if-none-match over a running rollout, a start over another one, an abort of a
rollout that already ended. Each changes nothing. A broken command still exits 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.rollout.record import RolloutBook, RolloutRecord
from functions.runtime.store import LocalStore
from infra.cli.main import EXIT_REFUSED, main
from tests.infra.test_cli_rollout import aiaas
from tests.infra.test_cli_rollout_preconditions import MODEL, running


@pytest.fixture
def rollout(tmp_path: Path) -> tuple[Path, RolloutRecord]:
    store = tmp_path / "store"
    return store, running(store, tmp_path)


def rollout_now(store: Path) -> RolloutRecord:
    return RolloutBook(LocalStore(store)).require(MODEL, "production")


def test_refusals_exit_3_and_change_nothing(
    rollout: tuple[Path, RolloutRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    store, record = rollout
    at = ["--store", str(store), "rollout"]
    refused = {
        "stale --if-match": [*at, "abort", MODEL, "--if-match", '"0f0f"'],
        "--if-none-match over a running one": [*at, MODEL, "3", "--if-none-match", "*"],
        "a start over a running one": [*at, MODEL, "3"],
    }
    for why, argv in refused.items():
        assert main(argv) == EXIT_REFUSED == 3, why
        err = capsys.readouterr().err
        assert err.startswith("aiaas rollout: error: ") and "ro@production" in err, why
        assert rollout_now(store) == record, why  # not a byte of it changed


def test_an_abort_of_an_ended_rollout_is_a_refusal(
    rollout: tuple[Path, RolloutRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = rollout
    assert main(["--store", str(store), "rollout", "abort", MODEL]) == 0
    ended = rollout_now(store)
    assert main(["--store", str(store), "rollout", "abort", MODEL]) == 3
    assert "is not running (it aborted); nothing to abort" in capsys.readouterr().err
    assert rollout_now(store) == ended


def test_a_start_on_an_alias_already_serving_the_version_is_a_refusal(tmp_path: Path) -> None:
    store = tmp_path / "store"
    running(store, tmp_path)
    assert main(["--store", str(store), "rollout", "abort", MODEL]) == 0
    Registry(LocalStore(store)).set_alias(MODEL, "production", "3")
    assert main(["--store", str(store), "rollout", MODEL, "3"]) == 3


def test_the_real_process_exits_3_and_broken_commands_still_exit_1(
    rollout: tuple[Path, RolloutRecord],
) -> None:
    store, record = rollout
    refused = aiaas(store, "rollout", MODEL, "3", "--if-none-match", "*")
    assert refused.returncode == 3, refused.stderr
    assert "is not idle (If-None-Match: *)" in refused.stderr
    broken = {
        "no such model": ("rollout", "abort", "nosuch"),
        "bad usage": ("rollout", "abort", MODEL, "--if-none-match", "*"),
    }
    for why, argv in broken.items():
        assert aiaas(store, *argv).returncode == 1, why
    assert rollout_now(store) == record


def test_a_bad_limit_is_named_by_its_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The plan's checks name its fields (the control plane's API); the CLI user typed flags."""
    store = tmp_path / "store"
    running(store, tmp_path)
    assert main(["--store", str(store), "rollout", "abort", MODEL]) == 0
    capsys.readouterr()
    at = ["--store", str(store), "rollout", MODEL, "3"]
    # The bounds said are those a new rollout takes: "--min-requests must be at least 0" was
    # said of -3, and 0 then refused; "--max-p99-ms must be above 0 and at most inf".
    said = {
        "--max-error-rate": ("5", "--max-error-rate must be at least 0 and at most 1; got 5.0"),
        "--min-requests": (
            "10000000000",
            "--min-requests must be at least 1 and at most 1,000,000,000; got 10000000000",
        ),
        "--min-requests ": (
            "-3",
            "--min-requests must be at least 1 and at most 1,000,000,000; got -3",
        ),
        "--min-requests  ": (
            "0",
            "--min-requests must be at least 1: a step advances on the version's answers, and "
            "one that answers none (it fails to load) must not; got 0",
        ),
        "--max-p99-ms": ("-5", "--max-p99-ms must be above 0; got -5.0"),
    }
    for flag, (value, message) in said.items():
        assert main([*at, flag.strip(), value]) == 1, flag
        assert capsys.readouterr().err.strip().endswith(message), flag


def test_the_subcommand_after_the_model_is_named_as_the_command_meant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aiaas rollout iris status` (words swapped) said only "version 'status' not found"."""
    for action in ("status", "abort", "resume"):
        assert main(["--store", str(tmp_path / "store"), "rollout", MODEL, action]) == 1
        said = capsys.readouterr().err
        assert f"version '{action}' of model '{MODEL}' not found" in said
        assert said.rstrip().endswith(f"did you mean: aiaas rollout {action} {MODEL}")
