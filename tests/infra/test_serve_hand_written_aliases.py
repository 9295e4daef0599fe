"""Alias records written by hand (or by another tool) under a running `aiaas serve`.

The registry served `{"version": "1"}` and listed it as healthy, but the control plane answered
its GET, and a PUT or rollback that had moved the alias, with a plain-text 500 (its response
model wanted `updated_at`, `updated_by` and a history of well-formed entries): a client saw a
failure while traffic had switched. A `"history": "x"` was copied into the next record as an
entry "x", and `aiaas versions --json` crashed on it. Now such a record is read leniently in one
place (functions/runtime/alias_record.py): the control plane answers it like any other, every
move answers 200 with the record it wrote, and the CLI reads the same history.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from functions.runtime.registry import Registry, alias_key
from functions.runtime.store import LocalStore
from tests.infra.test_serve import ROOT, TOKEN, ServeProcess, start_serve
from tests.publishing import publish_linear

MODEL = "iris"
ROW = [[5.1, 3.5, 1.4, 0.2]]
WHEN = "2026-01-02T03:04:05Z"

# name -> (the record as written by hand, what GET answers of it)
RECORDS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "bare": ({"version": "1"}, {"updated_at": None, "updated_by": None, "history": []}),
    "split": (
        {"version": "1", "weights": {"1": 0.5, "2": 0.5}},
        {"weights": {"1": 0.5, "2": 0.5}, "history": []},
    ),
    "history not a list": ({"version": "1", "history": "x"}, {"history": []}),
    "entries that are not states": (
        {"version": "1", "history": ["x", {"version": "../2"}, {"weights": {"2": 1}}, {}]},
        {"history": []},
    ),
    "entry without time or actor": (
        {"version": "1", "history": [{"version": "2"}]},
        {"history": [{"version": "2", "updated_at": None, "updated_by": None}]},
    ),
    "entry's shadow with a key of its own": (
        {
            "version": "1",
            "updated_at": WHEN,
            "updated_by": "ops",
            "history": [
                {
                    "version": "2",
                    "shadow": {"version": "3", "sample": 0.5, "note": "hand-made"},
                    "updated_at": WHEN,
                    "updated_by": "ops",
                }
            ],
        },
        {"history": [{"version": "2", "shadow": {"version": "3", "sample": 0.5}}]},
    ),
    "shadow with a key of its own": (
        {"version": "1", "shadow": {"version": "3", "sample": 0.2, "note": "hand-made"}},
        {"shadow": {"version": "3", "sample": 0.2}},
    ),
    "time and actor not text": (
        {"version": "1", "updated_at": 1767322800, "updated_by": None, "history": []},
        {"updated_at": None, "updated_by": None},
    ),
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hand-written-aliases")
    registry = Registry(LocalStore(root / "store"))
    for version in ("1", "2", "3"):
        publish_linear(registry, root, MODEL, version, seed=int(version))
    registry.set_alias(MODEL, "production", "1", actor="ci")
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServeProcess]:
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_ALIAS_TTL": "3600"}  # a change is seen, not waited
    yield from start_serve(root / "store", env=env, headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
def client(server: ServeProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
        yield client


def write_by_hand(root: Path, alias: str, record: dict[str, Any]) -> None:
    """`record` as another tool writes it: straight into the store, as it stands."""
    LocalStore(root / "store").put_bytes(alias_key(MODEL, alias), json.dumps(record).encode())


def stored(root: Path, alias: str) -> dict[str, Any]:
    path = root / "store" / "models" / MODEL / "aliases" / f"{alias}.json"
    return dict(json.loads(path.read_text()))


def aiaas(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a process of its own, beside the server, on the same store."""
    return subprocess.run(
        [sys.executable, "-m", "infra.cli.main", "--store", str(root / "store"), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def answered_by(client: httpx.Client) -> str:
    answer = client.post(f"/models/{MODEL}/predict", json={"inputs": ROW})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["version"])


def json_answer(answer: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The body of an answer that must be `status` and JSON (a 500 was text/plain)."""
    assert (answer.status_code, answer.headers["content-type"]) == (status, "application/json"), (
        answer.text
    )
    return dict(answer.json())


def well_formed(record: dict[str, Any]) -> None:
    """Every state a stored record carries reads as one: an object naming its version."""
    for state in record["history"]:
        assert isinstance(state, dict) and isinstance(state["version"], str), record


@pytest.mark.parametrize("case", list(RECORDS))
def test_the_control_plane_answers_and_moves_a_hand_written_alias(
    client: httpx.Client, server: ServeProcess, root: Path, case: str
) -> None:
    written, expected = RECORDS[case]
    write_by_hand(root, "production", written)
    aliases = f"/control/models/{MODEL}/aliases/production"
    got = json_answer(client.get(aliases))
    assert (got["model"], got["alias"], got["version"]) == (MODEL, "production", "1")
    for key, value in expected.items():
        if key == "history":  # the keys the case names, of each entry
            assert [{k: e[k] for k in v} for e, v in zip(got[key], value, strict=True)] == value
        else:
            assert got[key] == value, (key, got)
    assert answered_by(client) in ({"1", "2"} if "weights" in written else {"1"})
    listed = json_answer(client.get(f"/control/models/{MODEL}"))
    assert (listed["aliases"]["production"], listed["problems"]) == ("1", [])

    for version in ("2", "3"):  # every move answers what it did, the second one too
        moved = json_answer(client.put(aliases, json={"version": version}))
        assert moved["version"] == version == stored(root, "production")["version"]
        assert moved["history"][0]["version"] == ("1" if version == "2" else "2")
        well_formed(stored(root, "production"))
        assert answered_by(client) == version
    rolled = json_answer(client.post(f"{aliases}/rollback"))
    assert rolled["version"] == "2" == stored(root, "production")["version"] == answered_by(client)
    assert json_answer(client.get(aliases)) == rolled

    if case == "history not a list":  # said once in the server's log, not once a read
        assert server.output().count("history 'x' is not a list: left out") == 1
    for argv in (("versions", MODEL), ("versions", MODEL, "--json")):
        shown = aiaas(root, *argv)
        assert (shown.returncode, shown.stderr) == (0, ""), shown.stderr
    states = json.loads(shown.stdout)["alias_history"]["production"]
    assert [s["version"] for s in states[:4]] == ["2", "3", "2", "1"]


def test_a_hand_written_alias_deleted_is_restored_by_a_rollback(
    client: httpx.Client, root: Path
) -> None:
    write_by_hand(root, "legacy", {"version": "3", "history": "x"})
    aliases = f"/control/models/{MODEL}/aliases/legacy"
    assert json_answer(client.delete(aliases)) == {"deleted": f"{MODEL}@legacy"}
    gone = json_answer(client.get(aliases), 404)
    assert "it pointed at 3); roll it back to restore it" in gone["error"]
    restored = json_answer(client.post(f"{aliases}/rollback"))
    assert restored["version"] == "3" == stored(root, "legacy")["version"]
    assert restored["history"][0]["version"] == "3" and restored["history"][0]["deleted_at"]
    well_formed(stored(root, "legacy"))


def test_the_cli_moves_a_hand_written_alias_and_lists_its_history(root: Path) -> None:
    write_by_hand(root, "cli", {"version": "1", "history": ["x", {"version": "2"}]})
    promoted = aiaas(root, "promote", MODEL, "3", "--alias", "cli")
    assert (promoted.returncode, promoted.stdout) == (0, f"{MODEL}@cli -> 3 (was 1)\n")
    well_formed(stored(root, "cli"))
    assert [s["version"] for s in stored(root, "cli")["history"]] == ["1", "2"]
    rolled = aiaas(root, "rollback", MODEL, "--alias", "cli")
    assert (rolled.returncode, rolled.stdout) == (0, f"{MODEL}@cli -> 1 (rolled back from 3)\n")
    listed = aiaas(root, "versions", MODEL, "--json")
    assert listed.returncode == 0, listed.stderr
    states = json.loads(listed.stdout)["alias_history"]["cli"]
    assert [(s["version"], s["updated_by"] is None) for s in states] == [
        ("1", False),
        ("3", False),
        ("1", True),  # as written by hand: who moved it was not recorded
        ("2", True),
    ]
    text = aiaas(root, "versions", MODEL)
    assert text.returncode == 0 and "@cli history (4 states, newest first):" in text.stdout
