"""`aiaas rollout status|abort|MODEL VERSION` with `--if-match` / `--if-none-match`: status
prints the rollout's ETag (`--json` too), a stale abort or a start over a running rollout is
refused naming it and changes nothing, and the ETag as the shell left it (quotes lost) works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.rollout.preconditions import rollout_etag
from functions.runtime.rollout.record import RolloutBook, RolloutRecord
from functions.runtime.store import LocalStore
from infra.cli.main import main
from infra.cli.rollout_commands import _NoMetrics
from tests.infra.test_cli_rollout import aiaas
from tests.rollout_models import publish

MODEL = "ro"


def running(store: Path, tmp_path: Path) -> RolloutRecord:
    registry = Registry(LocalStore(store))
    for version in ("1", "2", "3"):
        publish(registry, tmp_path, MODEL, version, "healthy")
    registry.set_alias(MODEL, "production", "1")
    plan = RolloutPlan(steps=(0.1, 1.0), bake_s=60, max_error_rate=0.01)
    engine = RolloutEngine(registry, _NoMetrics())
    return engine.start(MODEL, "2", plan, alias="production", actor="alice")


def test_status_prints_the_etag_and_abort_honours_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    record = running(store, tmp_path)
    etag = rollout_etag(record)
    assert main(["--store", str(store), "rollout", "status", MODEL, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["etag"] == etag
    assert main(["--store", str(store), "rollout", "status", MODEL]) == 0
    assert f"  etag {etag} (--if-match" in capsys.readouterr().out

    monkeypatch.setenv("AIAAS_ACTOR", "carol")
    stale = ["--store", str(store), "rollout", "abort", MODEL, "--if-match", '"0f0f"']
    assert main(stale) == 3  # refused (EXIT_REFUSED), not broken
    assert capsys.readouterr().err == (
        "aiaas rollout: error: the rollout of ro@production changed since you read it: "
        f"rollout {record.id} (1 -> 2) is running at 10%, started by alice at "
        f"{record.started_at}; read it again (aiaas rollout status, or GET its ETag) and retry\n"
    )
    assert RolloutBook(LocalStore(store)).require(MODEL, "production").running
    unquoted = etag.strip('"')  # `--if-match "abc"` in a shell passes abc
    assert main(["--store", str(store), "rollout", "abort", MODEL, "--if-match", unquoted]) == 0
    aborted = RolloutBook(LocalStore(store)).require(MODEL, "production")
    last = aborted.log[-1]
    assert (aborted.state.value, last["by"]) == ("aborted", "carol")
    assert last["message"] == f"aborted by carol: If-Match: {etag}"


def test_a_start_with_if_none_match_over_a_running_rollout_is_refused(tmp_path: Path) -> None:
    """The real `aiaas` process; refused before it needs a gateway's metrics."""
    store = tmp_path / "store"
    record = running(store, tmp_path)
    done = aiaas(store, "rollout", MODEL, "3", "--if-none-match", "*")
    assert done.returncode == 3  # refused (EXIT_REFUSED), not broken
    assert done.stderr.startswith(
        "aiaas rollout: error: the rollout of ro@production is not idle (If-None-Match: *): "
        f"rollout {record.id} (1 -> 2) is running at 10%, started by alice"
    )
    assert RolloutBook(LocalStore(store)).require(MODEL, "production").id == record.id
    misuse = aiaas(store, "rollout", "abort", MODEL, "--if-none-match", "*")
    assert misuse.returncode == 1
    assert "--if-none-match applies to a start; an abort takes --if-match ETAG" in misuse.stderr
