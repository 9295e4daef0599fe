"""`aiaas prune`: --dry-run lists exactly what would go, a script without --yes is refused, a
terminal is asked, --json, an alias'd version refused, and `aiaas versions` shows the run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.publishing import publish_linear


@pytest.fixture
def store(tmp_path: Path) -> str:
    """m:1..4, @production at 1."""
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2", "3", "4"):
        publish_linear(registry, tmp_path, "m", version)
    registry.set_alias("m", "production", "1", actor="ci")
    return str(tmp_path / "store")


def versions(store: str) -> list[str]:
    return Registry(LocalStore(store)).versions("m")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_dry_run_lists_what_would_go_and_deletes_nothing(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--store", store, "prune", "m", "--keep", "1", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "m: would delete 2 version(s) (0.4 kB), kept 2"
    assert [line.split()[:3] for line in out[1:3]] == [
        ["would", "delete", "2"],
        ["would", "delete", "3"],
    ]
    assert out[3].split(None, 2) == [
        "kept",
        "4",
        "latest (what `m` alone serves once @production is removed), one of the 1 newest",
    ]
    assert out[4].split(None, 2) == ["kept", "1", "@production"]
    assert versions(store) == ["1", "2", "3", "4"]


def test_a_script_without_yes_is_refused_and_a_terminal_is_asked(
    store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO())  # not a terminal
    assert main(["--store", store, "prune", "m", "--keep", "1"]) == 1
    assert capsys.readouterr().err == (
        "aiaas prune: error: prune would delete 2 version(s) (0.4 kB) of m; not asking outside "
        "a terminal: pass --yes to delete, or --dry-run to list them\n"
    )
    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    assert main(["--store", store, "prune", "m", "--keep", "1"]) == 1
    said = capsys.readouterr()  # the listing and the question where the person reads them
    assert said.out == "" and said.err.endswith("? [y/N] nothing deleted\n")
    assert said.err.startswith("m: would delete 2 version(s) (0.4 kB), kept 2\n")
    assert versions(store) == ["1", "2", "3", "4"]
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    assert main(["--store", store, "prune", "m", "--keep", "1"]) == 0
    assert "m: deleted 2 version(s) (0.4 kB), kept 2" in capsys.readouterr().out
    assert versions(store) == ["1", "4"]


def test_yes_json_and_the_run_shown_by_versions(
    store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIAAS_ACTOR", "release-bot")
    assert main(["--store", store, "prune", "m", "--keep", "0", "--yes", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [d["version"] for d in doc["deleted"]] == ["2", "3"]
    assert doc["kept"] == [
        {"version": "4", "why": ["latest (what `m` alone serves once @production is removed)"]},
        {"version": "1", "why": ["@production"]},  # the alias'd version is refused
    ]
    assert main(["--store", store, "versions", "m"]) == 0
    out = capsys.readouterr().out.splitlines()
    run = out[out.index("pruned (1 runs, newest first):") + 1]
    assert "release-bot" in run and run.endswith("deleted 2, 3 (0.0 MB)")
    assert main(["--store", store, "versions", "m", "--json"]) == 0
    (pruned,) = json.loads(capsys.readouterr().out)["prunes"]
    assert (pruned["deleted_by"], pruned["versions"]) == ("release-bot", ["2", "3"])
    assert main(["--store", store, "prune", "m", "--keep", "0", "--yes"]) == 0
    assert capsys.readouterr().out.startswith("m: nothing to prune (2 version(s) kept)")


def test_prune_removes_the_version_folders_stopped_publishes_left_empty(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A Ctrl-C'd publish (before this was fixed), or a killed one whose temp files were swept
    # since, left its version's folder empty: no prune removed it, and every next publish
    # counted it and took the number after (`aiaas publish` gave 7 here, not 5).
    versions_folder = Path(store) / "models" / "m" / "versions"
    for folder in ("5", "6/card"):
        (versions_folder / folder).mkdir(parents=True)
    assert main(["--store", store, "prune", "m", "--keep", "10", "--dry-run"]) == 0
    assert (versions_folder / "6" / "card").is_dir()  # a dry run changes nothing
    capsys.readouterr()
    assert main(["--store", store, "prune", "m", "--keep", "10", "--yes"]) == 0
    assert capsys.readouterr().out.startswith("m: nothing to prune (4 version(s) kept)\n")
    assert sorted(p.name for p in versions_folder.iterdir() if p.is_dir()) == ["1", "2", "3", "4"]
    assert Registry(LocalStore(store)).next_version("m") == "5"
