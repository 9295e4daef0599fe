"""`--reason TEXT` on the CLI's alias moves (promote, with and without --weight; shadow, set
and stopped; rollback; rollout start and abort): kept in the alias history, shown by `aiaas
versions` (text and --json) and in the rollout's log; an unfit one, or none where
AIAAS_REQUIRE_REASON is on, a usage error (exit 2) before anything moves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.rollout.record import RolloutBook
from functions.runtime.store import LocalStore
from infra.cli.main import main
from infra.cli.rollout_commands import _NoMetrics
from tests.infra.test_cli_rollout import start_scrapes_then_gone
from tests.infra.test_serve import ROOT
from tests.publishing import publish_linear

MODEL = "m"
WHY = "CHG-1234: fixes false declines"


def three_versions(tmp_path: Path) -> tuple[str, Registry]:
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2", "3"):
        publish_linear(registry, tmp_path, MODEL, version)
    return str(tmp_path / "store"), registry


def aiaas(store: str, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real `aiaas` in a process of its own (`env`: on top of this one's)."""
    return subprocess.run(
        [sys.executable, "-m", "infra.cli.main", "--store", store, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )


def test_each_move_keeps_its_reason_and_versions_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, registry = three_versions(tmp_path)
    for argv in (
        ["promote", MODEL, "1"],  # none said: the line as before
        ["promote", MODEL, "2", "--weight", "0.1", "--reason", WHY],
        ["shadow", MODEL, "3", "--sample", "0.5", "--reason", "CHG-2: compare 3"],
        ["shadow", MODEL, "--off", "--reason", "CHG-2 done"],
        ["rollback", MODEL, "--reason", "INC-7: p99 doubled"],
        ["promote", MODEL, "1", "--alias", "staging", "--reason", "CHG-3 staging"],
    ):
        assert main(["--store", store, *argv]) == 0, argv
    record = registry.alias_record(MODEL, "production")
    assert record is not None and record["reason"] == "INC-7: p99 doubled"
    assert [e.get("reason") for e in record["history"]] == [
        "CHG-2 done", "CHG-2: compare 3", WHY, None,
    ]  # fmt: skip
    capsys.readouterr()
    assert main(["--store", store, "versions", MODEL]) == 0
    out = capsys.readouterr().out.splitlines()
    start = out.index("@production history (5 states, newest first):")
    assert out[start + 1].endswith("; why: INC-7: p99 doubled")
    assert out[start + 4].endswith(f"1 (90%) + 2 (10%); why: {WHY}")
    assert out[start + 5].endswith(" 1")  # the first move said no reason: no "why"
    assert any(line.endswith("1; why: CHG-3 staging") for line in out)

    assert main(["--store", store, "versions", MODEL, "--json"]) == 0
    states = json.loads(capsys.readouterr().out)["alias_history"]["production"]
    assert [s["reason"] for s in states] == [
        "INC-7: p99 doubled", "CHG-2 done", "CHG-2: compare 3", WHY, None,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        ("x" * 501, "the reason is 501 characters; at most 500 are kept"),
        (
            "CHG-1\n2026-01-01 root  9",
            r"the reason holds a control character ('\n' at character 6)",
        ),
        ("\x1b[2J", r"the reason holds a control character ('\x1b' at character 1)"),
    ],
)
def test_an_unfit_reason_is_a_usage_error_and_nothing_moves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], reason: str, said: str
) -> None:
    store, registry = three_versions(tmp_path)
    registry.set_alias(MODEL, "production", "1")
    before = registry.alias_record(MODEL, "production")
    for argv in (
        ["promote", MODEL, "2"],
        ["shadow", MODEL, "2"],
        ["rollback", MODEL],
        ["rollout", MODEL, "2"],
        ["rollout", "abort", MODEL],
    ):
        with pytest.raises(SystemExit) as exited:
            main(["--store", store, *argv, "--reason", reason])
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert f"argument --reason: {said}" in err, err
        assert err.startswith("usage: aiaas ")
    assert registry.alias_record(MODEL, "production") == before


def test_required_reasons_refuse_a_move_without_one(tmp_path: Path) -> None:
    store, registry = three_versions(tmp_path)
    registry.set_alias(MODEL, "production", "1")
    before = registry.alias_record(MODEL, "production")
    for argv in (
        ["promote", MODEL, "2"],
        ["promote", MODEL, "2", "--weight", "0.1", "--reason", "  "],  # blank: none
        ["shadow", MODEL, "--off"],
        ["rollback", MODEL],
        ["rollout", MODEL, "2"],
        ["rollout", "abort", MODEL],
    ):
        done = aiaas(store, *argv, AIAAS_REQUIRE_REASON="1")
        assert done.returncode == 2, (argv, done.stderr)
        assert done.stderr.splitlines()[-1] == (
            f"aiaas {argv[0]}: error: every alias move here needs a reason "
            "(AIAAS_REQUIRE_REASON is on): give --reason TEXT, such as a change ticket "
            '("CHG-1234: fixes false declines")'
        )
    assert registry.alias_record(MODEL, "production") == before
    assert RolloutBook(registry.store).get(MODEL, "production") is None
    # Reads need none; a move with one goes ahead.
    assert aiaas(store, "versions", MODEL, AIAAS_REQUIRE_REASON="1").returncode == 0
    moved = aiaas(store, "promote", MODEL, "2", "--reason", WHY, AIAAS_REQUIRE_REASON="1")
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.strip() == f"{MODEL}@production -> 2 (was 1)"
    assert registry.alias_record(MODEL, "production")["reason"] == WHY  # type: ignore[index]


def test_a_rollout_start_and_abort_keep_their_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, registry = three_versions(tmp_path)
    registry.set_alias(MODEL, "production", "1")
    with start_scrapes_then_gone() as metrics:  # the start's scrapes; then its checks fail
        argv = ("--bake", "1s", "--retry-for", "1s", "--metrics", metrics, "--reason", WHY)
        done = aiaas(store, "rollout", MODEL, "2", *argv)
    assert done.returncode == 1, done.stderr  # aborted once its gateway was gone
    started = next(line for line in done.stdout.splitlines() if " started " in line)
    assert started.endswith(f"1 -> 2 (why: {WHY})")
    record = RolloutBook(registry.store).require(MODEL, "production")
    assert record.started_reason == WHY and record.log[0]["reason"] == WHY
    history = registry.alias_record(MODEL, "production")
    assert history is not None and history["version"] == "1"
    assert history["history"][0]["weights"] == {"1": 0.9, "2": 0.1}  # its first step's move
    assert history["history"][0]["reason"] == WHY
    assert "checks failed for " in history["reason"]  # why the move back was made

    # An abort by hand, of a rollout started without a reason.
    RolloutEngine(registry, _NoMetrics()).start(
        MODEL, "3", RolloutPlan(steps=(0.2, 1.0), bake_s=60, max_error_rate=0.01),
        alias="production", actor="ci",
    )  # fmt: skip
    capsys.readouterr()
    assert main(["--store", store, "rollout", "abort", MODEL, "--reason", "INC-8: pager"]) == 0
    ended = RolloutBook(registry.store).require(MODEL, "production")
    assert ended.log[-1]["reason"] == "INC-8: pager"
    assert ended.log[-1]["message"].endswith(": INC-8: pager")
    back = registry.alias_record(MODEL, "production")
    assert back is not None and (back["version"], back["reason"]) == ("1", "INC-8: pager")
    capsys.readouterr()
    assert main(["--store", store, "rollout", "status", MODEL]) == 0
    status = capsys.readouterr().out
    aborted = [line for line in status.splitlines() if "  aborted     aborted by " in line]
    assert len(aborted) == 1 and aborted[0].endswith(": INC-8: pager")
    # status and resume move nothing: a reason there is refused, not silently dropped
    assert main(["--store", store, "rollout", "status", MODEL, "--reason", "x"]) == 1
    assert "--reason applies to a start or an abort, not status" in capsys.readouterr().err


def test_versions_prints_a_hand_written_reason_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, registry = three_versions(tmp_path)
    registry.set_alias(MODEL, "production", "1")
    raw = registry.store.get_bytes(f"models/{MODEL}/aliases/production.json")
    forged = json.loads(raw) | {"reason": "ok\n  2026-01-01 root  3\x1b]0;x\x07"}
    registry.store.put_bytes(f"models/{MODEL}/aliases/production.json", json.dumps(forged).encode())
    assert main(["--store", store, "versions", MODEL]) == 0
    out = capsys.readouterr().out
    assert "; why: ok\\n  2026-01-01 root  3\\x1b]0;x\\x07" in out
    assert "\x1b" not in out and "\n  2026-01-01 root" not in out
